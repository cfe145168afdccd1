// Carries one prepared outbound request over fetch. Never throws for the provider's sake: every
// failure becomes `{status, headers, body}` (at most 64 KiB of it) or `{transport, message}`.
// The secret attached is taken out of all that comes back, answers streamed on included.
import { Agent } from 'undici';
import { MAX_ERROR_BODY } from './bindings.js';
import { Scrub } from './secrets.js';

/**
 * Sends `outbound` (as `prepare` returned it) with `secret` attached. Resolves to
 * `{ok: true, response}` for an answer or `{ok: false, failure}`. An event stream's body is
 * handed on unread (scrubbed as it streams), so streams stream; of any other 2xx the first
 * 64 KiB are read here and,
 * when `succeeded({status, headers, body})` (the guest's verdict) calls it no answer (an error
 * document inside a 200), it is a failure; else the caller gets a Response that replays those
 * bytes and streams the rest. Rejects only when the caller's `signal` aborts. Neither the guest
 * nor the caller sees `secret` in what comes back, even when the provider echoes it.
 */
/**
 * @param {any} outbound
 * @param {string | undefined} secret
 * @param {{signal?: AbortSignal, fetchImpl?: typeof fetch, succeeded?: (r: any) => boolean}} [options]
 */
export async function send(outbound, secret, { signal, fetchImpl = fetch, succeeded } = {}) {
  const scrub = new Scrub(secret);
  const headers = new Headers();
  for (const { name, value } of outbound.headers) headers.append(name, value);
  if (secret !== undefined) headers.set(outbound.secretHeader, outbound.secretPrefix + secret);
  // fetch has no separate connect timeout: the attempt gets connect + read.
  const timeout = AbortSignal.timeout(Number(outbound.connectTimeoutMs + outbound.readTimeoutMs));
  const method = outbound.method.toUpperCase();
  // The policy asks for a new connection after an auth failure or a reset, so a pooled
  // connection (perhaps broken, perhaps holding a proxy's view of the old key) is not reused:
  // a dispatcher of its own, closed once its one exchange is over (closing waits for the body).
  const fresh = outbound.freshConnection ? new Agent() : undefined;
  let response;
  try {
    response = await fetchImpl(outbound.url, {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : outbound.body,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      redirect: 'manual',
      ...(fresh && { dispatcher: fresh }),
    });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    return { ok: false, failure: scrub.failure(transportFailure(e)) };
  } finally {
    fresh?.close().catch(() => {});
  }
  if (response.status >= 200 && response.status < 300) {
    if (NO_BODY.has(response.status)) return { ok: true, response: passOn(response, null, scrub) };
    if (!succeeded || isEventStream(response.headers)) {
      const body = response.body && scrubbed(response.body.getReader(), scrub.stream(), Buffer.alloc(0));
      return { ok: true, response: passOn(response, body, scrub) };
    }
    return judged(response, succeeded, signal, scrub);
  }
  let body;
  try {
    const reader = response.body?.getReader();
    const { prefix, done } = await readUpTo(reader, MAX_ERROR_BODY);
    reader?.cancel().catch(() => {});
    body = scrub.prefix(scrub.bytes(prefix), MAX_ERROR_BODY, !done);
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    return { ok: false, failure: scrub.failure(transportFailure(e)) };
  }
  return { ok: false, failure: { status: response.status, headers: scrub.headers([...response.headers]), body } };
}

/**
 * `response` as the caller gets it: `body` (already scrubbed, or null), status text and headers
 * scrubbed; fetch has decoded the body, so its encoding and length headers no longer apply.
 */
function passOn(response, body, scrub) {
  const headers = new Headers(scrub.headers([...response.headers]).filter(([name]) => !DECODED.has(name.toLowerCase())));
  return new Response(body, { status: response.status, statusText: scrub.text(response.statusText), headers });
}

/**
 * The rest of a body from `reader` after `head` (bytes already scrubbed), scrubbed by `stream`
 * chunk by chunk (a secret split across chunks included), unbuffered.
 */
function scrubbed(reader, stream, head) {
  return new ReadableStream({
    start(controller) {
      if (head.length) controller.enqueue(head);
    },
    async pull(controller) {
      // A pull that enqueues nothing is not repeated for a read already waiting: read on until
      // something can go on (a chunk may be all held back, the beginning of a secret).
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) {
          const held = stream.finish();
          if (held.length) controller.enqueue(held);
          controller.close();
          return;
        }
        const out = stream.push(chunk.value);
        if (out.length) {
          controller.enqueue(out);
          return;
        }
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** Statuses whose Response may carry no body. */
const NO_BODY = new Set([204, 205]);

function isEventStream(headers) {
  return (headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * A 2xx judged by the guest from the first 64 KiB of its body (all it reads), scrubbed: a failure,
 * or the answer as a new Response whose body replays that prefix and goes on with the rest,
 * unbuffered and scrubbed chunk by chunk.
 */
async function judged(response, succeeded, signal, scrub) {
  const reader = response.body?.getReader();
  let prefix;
  let done;
  try {
    ({ prefix, done } = await readUpTo(reader, MAX_ERROR_BODY));
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    return { ok: false, failure: scrub.failure(transportFailure(e)) };
  }
  // What can be judged and passed on now: all of it at the end, else all but a secret's beginning.
  const stream = scrub.stream();
  const head = Buffer.concat([stream.push(prefix), done ? stream.finish() : Buffer.alloc(0)]);
  const headers = scrub.headers([...response.headers]);
  if (!succeeded({ status: response.status, headers, body: head })) {
    reader?.cancel().catch(() => {});
    return { ok: false, failure: { status: response.status, headers, body: scrub.prefix(head, MAX_ERROR_BODY) } };
  }
  const rest = done ? head : scrubbed(reader, stream, head);
  return { ok: true, response: passOn(response, rest, scrub) };
}

const DECODED = new Set(['content-encoding', 'content-length', 'transfer-encoding']);

/** Chunks from `reader` (none when absent) until `limit` bytes or the end: `{prefix, done}`. */
async function readUpTo(reader, limit) {
  const chunks = [];
  let size = 0;
  while (reader && size < limit) {
    const { done, value } = await reader.read();
    if (done) return { prefix: Buffer.concat(chunks), done: true };
    chunks.push(value);
    size += value.length;
  }
  return { prefix: Buffer.concat(chunks), done: !reader };
}

const CODES = {
  ECONNREFUSED: 'connection-refused',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
};

/** What kind of transport problem an error from fetch is (never containing a secret). */
export function transportFailure(e) {
  if (e?.name === 'TimeoutError') return { transport: 'timeout', message: 'no answer within the timeout' };
  const cause = e?.cause ?? e;
  const code = cause?.code ?? '';
  const kind = CODES[code] ?? (/CERT|TLS|SSL/i.test(code) ? 'tls' : 'other');
  return { transport: kind, message: String(cause?.message ?? e?.message ?? kind).slice(0, 500) };
}
