// A fetch-compatible function that carries each request through the policy, for clients such as
// the openai SDK: `new OpenAI({baseURL: 'http://failover.local/v1', fetch: failoverFetch(p)})`.
import { PolicyError } from './errors.js';

/**
 * `prefix` is the path part of the caller's baseURL: what follows it is the path under each
 * provider's own base URL, which the guest's `prepare` joins (with the model and key of the route).
 * `timeoutMs` is the caller's deadline for each call (an SDK's own timeout arrives only as an
 * abort of its signal, which cancels the call whenever it comes). The answer's body comes as the
 * policy passes it on: a stream's events as they arrive once the first content came.
 */
/**
 * @param {import('./policy.js').Policy} policy
 * @param {{prefix?: string, timeoutMs?: number | bigint}} [options]
 */
export function failoverFetch(policy, { prefix = '/v1', timeoutMs } = {}) {
  return async function fetchThroughPolicy(input, init) {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) || '/' : url.pathname;
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : undefined;
    try {
      const { response } = await policy.call(
        { path: path + url.search, method: request.method, headers: [...request.headers], body },
        { signal: init?.signal ?? undefined, timeoutMs },
      );
      return response;
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      return errorResponse(e);
    }
  };
}

/**
 * The policy's final error (also when the call could not start: status 503, no attempts) as an
 * OpenAI-shaped error response, so an SDK raises one error whose
 * message is the policy's (a thrown fetch error would become a bare "Connection error.").
 */
function errorResponse(e) {
  const last = e.attempts.at(-1)?.outcome;
  const status = /^[45]\d\d$/.test(last ?? '') ? Number(last) : 503;
  const retryAtMs = e.retryAtMs === undefined ? null : Number(e.retryAtMs);
  const body = JSON.stringify({ error: { message: e.message, type: 'failover_policy', code: e.reason, retry_at_ms: retryAtMs } });
  return new Response(body, {
    status,
    headers: { 'content-type': 'application/json', 'x-failover-reason': e.reason },
  });
}
