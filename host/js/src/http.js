// Carries one prepared outbound request over fetch. Never throws for the provider's sake: every
// failure becomes `{status, headers, body}` (at most 64 KiB of it) or `{transport, message}`.
import { Agent } from 'undici';
import { MAX_ERROR_BODY } from './bindings.js';

/**
 * Sends `outbound` (as `prepare` returned it) with `secret` attached. Resolves to
 * `{ok: true, response}` for an answer or `{ok: false, failure}`. An event stream's body is
 * handed on untouched, so streams stream; of any other 2xx the first 64 KiB are read here and,
 * when `succeeded({status, headers, body})` (the guest's verdict) calls it no answer (an error
 * document inside a 200), it is a failure; else the caller gets a Response that replays those
 * bytes and streams the rest. Rejects only when the caller's `signal` aborts.
 */
export async function send(outbound, secret, { signal, fetchImpl = fetch, succeeded } = {}) {
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
    return { ok: false, failure: transportFailure(e) };
  } finally {
    fresh?.close().catch(() => {});
  }
  if (response.status >= 200 && response.status < 300) {
    if (!succeeded || NO_BODY.has(response.status) || isEventStream(response.headers)) return { ok: true, response };
    return judged(response, succeeded, signal);
  }
  let body;
  try {
    body = await readPrefix(response, MAX_ERROR_BODY);
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    return { ok: false, failure: transportFailure(e) };
  }
  return { ok: false, failure: { status: response.status, headers: [...response.headers], body }, response };
}

/** Statuses whose Response may carry no body. */
const NO_BODY = new Set([204, 205]);

function isEventStream(headers) {
  return (headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * A 2xx judged by the guest from the first 64 KiB of its body (all it reads): a failure, or the
 * answer as a new Response whose body replays that prefix and goes on with the rest, unbuffered.
 */
async function judged(response, succeeded, signal) {
  const reader = response.body?.getReader();
  let prefix;
  let done;
  try {
    ({ prefix, done } = await readUpTo(reader, MAX_ERROR_BODY));
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    return { ok: false, failure: transportFailure(e) };
  }
  const headers = [...response.headers];
  if (!succeeded({ status: response.status, headers, body: prefix })) {
    reader?.cancel().catch(() => {});
    return { ok: false, failure: { status: response.status, headers, body: prefix.subarray(0, MAX_ERROR_BODY) }, response };
  }
  const body = done ? prefix : new ReadableStream({
    start(controller) {
      controller.enqueue(prefix);
    },
    async pull(controller) {
      const chunk = await reader.read();
      if (chunk.done) controller.close();
      else controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  // fetch has decoded the body: its encoding and length headers no longer describe it.
  const kept = new Headers(headers.filter(([name]) => !DECODED.has(name.toLowerCase())));
  return { ok: true, response: new Response(body, { status: response.status, statusText: response.statusText, headers: kept }) };
}

const DECODED = new Set(['content-encoding', 'content-length', 'transfer-encoding']);

/** At most `limit` bytes of a body; the rest is cancelled, not downloaded. */
async function readPrefix(response, limit) {
  const reader = response.body?.getReader();
  const { prefix } = await readUpTo(reader, limit);
  reader?.cancel().catch(() => {});
  return prefix.subarray(0, limit);
}

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
