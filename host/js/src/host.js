// The guest's `host` imports. They must never throw (a throw unwinds through the guest and can
// leave its state borrowed), so every failure becomes a WIT value or a safe default.
import { randomBytes } from 'node:crypto';
import { encodeResponse, MAX_ERROR_BODY } from './bindings.js';
import { Scrub } from './secrets.js';

/** An answer larger than this is refused rather than copied into the guest (as in the Rust host). */
export const SUCCESS_BODY_LIMIT = 16 * 1024 * 1024;

/**
 * `send` is an optional synchronous `(outbound, secret) => {status, headers, body} |
 * {transport, message}` for the guest-driven `callSync`; without it the import reports that
 * this host sends asynchronously (`Policy.call`).
 */
export function hostImports({ clock, events, secrets, send, seed }) {
  return {
    send(outbound) {
      if (!send) return err('other', 'this host sends asynchronously: use Policy.call');
      const secret = secrets().get(outbound.route.credential);
      const scrub = new Scrub(secret); // the guest never sees the secret, even echoed back
      try {
        const r = send(outbound, secret);
        if (r?.transport !== undefined) return err(String(r.transport), scrub.text(String(r.message ?? r.transport)));
        const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
        // An answer goes back to the caller whole; of a failure the guest reads only a prefix.
        const answer = r.status >= 200 && r.status < 300;
        if (answer && body?.length > SUCCESS_BODY_LIMIT) {
          return err('other', `the answer is ${body.length} bytes, over the ${SUCCESS_BODY_LIMIT}-byte limit`);
        }
        const response = scrub.witResponse(encodeResponse(r.status, r.headers, body));
        if (!answer) response.body = scrub.prefix(response.body, MAX_ERROR_BODY);
        return { tag: 'ok', val: response };
      } catch (e) {
        return err('other', scrub.text(`host send failed: ${e?.message ?? e}`));
      }
    },
    nowMs() {
      try {
        return BigInt(Math.floor(clock().now()));
      } catch {
        return BigInt(Date.now());
      }
    },
    sleepMs(ms) {
      try {
        clock().sleep(Number(ms));
      } catch {
        // A clock that cannot sleep only shortens the wait.
      }
    },
    emit(event) {
      events.emit(event);
    },
    seed() {
      return seed !== undefined ? BigInt.asUintN(64, BigInt(seed)) : randomBytes(8).readBigUInt64LE();
    },
  };
}

function err(kind, message) {
  const kinds = ['timeout', 'connection-refused', 'dns', 'tls', 'reset', 'other'];
  return { tag: 'err', val: { kind: kinds.includes(kind) ? kind : 'other', message } };
}
