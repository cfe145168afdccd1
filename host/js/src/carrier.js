// Where a driven call's sends go: real HTTP over fetch. A carrier opens one response per `send`
// step and reads its body piece by piece; each wait is bounded by the step's `within-ms` with a
// timer (never blocking the event loop), and the caller's signal cuts any of them short.
// Carriers report what happened; the executor (drive.js) scrubs it and the guest judges it.
import { Agent } from 'undici';
import { transportFailure } from './http.js';

/** What a timer reports when it fires first. */
const TIMED_OUT = Symbol('timed out');
/** setTimeout fires at once for a delay above this. */
const MAX_TIMEOUT = 2 ** 31 - 1;

/**
 * A timer for `ms`: `promise` resolves to TIMED_OUT then; `cancel()` stops it. Longer waits than
 * setTimeout takes are waited in slices.
 */
export function timer(ms) {
  let handle;
  let cancelled = false;
  const promise = new Promise((resolve) => {
    const slice = (left) => {
      if (cancelled) return;
      handle = setTimeout(() => (left > MAX_TIMEOUT ? slice(left - MAX_TIMEOUT) : resolve(TIMED_OUT)), Math.min(left, MAX_TIMEOUT));
    };
    slice(ms);
  });
  return { promise, cancel: () => { cancelled = true; clearTimeout(handle); } };
}

/**
 * The HTTP carrier: `open(outbound, secret, withinMs, signal)` resolves to `{head: {status,
 * statusText, headers}, body}`,
 * `{timedOut: true}` or `{failure}`; `body.read(withinMs)` to `{data}`, `{end: true}`,
 * `{timedOut: true}` or `{failure}`. Both reject only with the caller's abort reason.
 * `fetchImpl` receives a `dispatcher` (a throwaway undici Agent) for a fresh connection.
 */
export function httpCarrier({ fetchImpl = fetch } = {}) {
  return {
    async open(outbound, secret, withinMs, signal) {
      const headers = new Headers();
      for (const { name, value } of outbound.headers) headers.append(name, value);
      if (secret !== undefined) headers.set(outbound.secretHeader, outbound.secretPrefix + secret);
      const method = outbound.method.toUpperCase();
      // One controller per attempt: a timeout, a later step's send or the caller's abort ends it.
      const attempt = new AbortController();
      // The policy asks for a new connection after an auth failure or a reset, so a pooled
      // connection (perhaps broken, perhaps holding a proxy's view of the old key) is not reused.
      const fresh = outbound.freshConnection ? new Agent() : undefined;
      const limit = timer(withinMs);
      limit.promise.then(() => attempt.abort());
      try {
        const response = await fetchImpl(outbound.url, {
          method,
          headers,
          body: method === 'GET' || method === 'HEAD' ? undefined : outbound.body,
          signal: signal ? AbortSignal.any([signal, attempt.signal]) : attempt.signal,
          redirect: 'manual',
          ...(fresh && { dispatcher: fresh }),
        });
        const head = { status: response.status, statusText: response.statusText, headers: [...response.headers] };
        return { head, body: new HttpBody(response, attempt, signal) };
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (attempt.signal.aborted) return { timedOut: true };
        return { failure: transportFailure(e) };
      } finally {
        limit.cancel();
        // Closing waits for the exchange in flight: the body outlives it.
        fresh?.close().catch(() => {});
      }
    },
  };
}

/** An open response's body, read with a timer per read. */
class HttpBody {
  #reader;
  #attempt;
  #signal;
  /** A read that outlived its step's time: the next read takes its result. */
  #pending;

  constructor(response, attempt, signal) {
    this.#reader = response.body?.getReader();
    this.#attempt = attempt;
    this.#signal = signal;
  }

  async read(withinMs) {
    if (!this.#reader) return { end: true };
    if (!this.#pending) {
      this.#pending = this.#reader.read();
      this.#pending.catch(() => {}); // a read left behind by close() must not go unhandled
    }
    const limit = timer(withinMs);
    try {
      const r = await Promise.race([this.#pending, limit.promise]);
      if (r === TIMED_OUT) return { timedOut: true };
      this.#pending = undefined;
      return r.done ? { end: true } : { data: r.value };
    } catch (e) {
      this.#pending = undefined;
      if (this.#signal?.aborted) throw this.#signal.reason;
      return { failure: transportFailure(e) };
    } finally {
      limit.cancel();
    }
  }

  /** The guest is done with this response: the connection goes. */
  close() {
    this.#attempt.abort();
    this.#reader?.cancel().catch(() => {});
  }
}
