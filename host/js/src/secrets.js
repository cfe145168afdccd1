// Secrets stay in the host: the guest sees credential ids and fingerprints, never a key.
import { createHash } from 'node:crypto';

/** `FAILOVER_KEY_<ID>`, upper-cased, non-alphanumerics as `_`. */
export function defaultEnvName(id) {
  // One `_` per code point, then upper-case: upper-casing first can lengthen ('ß' to 'SS').
  return `FAILOVER_KEY_${id.replace(/[^A-Za-z0-9]/gu, '_').toUpperCase()}`;
}

/** First 16 hex chars of sha256(secret): changes when a key is replaced, reveals nothing. */
export function fingerprint(secret) {
  return createHash('sha256').update(secret).digest('hex').slice(0, 16);
}

/**
 * The secrets per credential id, from `given` ({id: secret}) when passed, else from the
 * environment variable each credential names. Ids without a secret are left out.
 */
export function resolveSecrets(config, given, env = process.env) {
  const secrets = new Map();
  for (const provider of Object.values(config?.providers ?? {})) {
    for (const cred of Array.isArray(provider?.credentials) ? provider.credentials : []) {
      if (typeof cred?.id !== 'string') continue;
      const secret = given ? given[cred.id] : env[typeof cred.env === 'string' ? cred.env : defaultEnvName(cred.id)];
      if (typeof secret === 'string' && secret !== '') secrets.set(cred.id, secret);
    }
  }
  return secrets;
}

/** What the guest may know: `[{id, fingerprint}]` for the credentials that have a secret. */
export function credentialInfo(secrets) {
  return [...secrets].map(([id, secret]) => ({ id, fingerprint: fingerprint(secret) }));
}

/**
 * A secret shorter than this is not scrubbed: it cannot be told from ordinary text (removing a
 * 1-letter test key would rewrite every body), and no provider issues one.
 */
export const MIN_SCRUBBED = 8;

/**
 * Takes the secret attached to a request out of what came back: status text, headers, body and
 * transport error messages. Each occurrence becomes `...` and the secret's last 4 characters
 * (only `...` under 16 characters), so a message still says which key it was about. The header
 * sent is `secretPrefix + secret`, so its whole value goes too.
 */
export class Scrub {
  #secret;
  #text;
  #mask;

  constructor(secret) {
    const usable = typeof secret === 'string' && secret.length >= MIN_SCRUBBED;
    this.#text = usable ? secret : '';
    this.#secret = Buffer.from(this.#text);
    const mask = `...${this.#text.length >= 16 ? [...this.#text].slice(-4).join('') : ''}`;
    this.#mask = Buffer.from(mask);
  }

  /** `data` (bytes) with every occurrence masked; the same object when there is none. */
  bytes(data) {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (!this.#text || buf.indexOf(this.#secret) < 0) return data;
    const parts = [];
    let from = 0;
    for (let at = buf.indexOf(this.#secret); at >= 0; at = buf.indexOf(this.#secret, from)) {
      parts.push(buf.subarray(from, at), this.#mask);
      from = at + this.#secret.length;
    }
    parts.push(buf.subarray(from));
    return Buffer.concat(parts);
  }

  text(text) {
    return this.#text && text.includes(this.#text) ? text.split(this.#text).join(this.#mask.toString()) : text;
  }

  /** `[[name, value]]` with the secret out of names and values. */
  headers(entries) {
    return entries.map(([name, value]) => [this.text(name), this.text(value)]);
  }

  /** `{transport, message}` with the secret out of the message. */
  failure(f) {
    return { ...f, message: this.text(String(f.message ?? f.transport)) };
  }

  /** An encoded `http-response` (`{status, headers: [{name, value}], body}`) scrubbed. */
  witResponse(r) {
    const headers = r.headers.map(({ name, value }) => ({ name: this.text(name), value: this.text(value) }));
    return { ...r, headers, body: this.bytes(r.body) };
  }

  /** An encoded `failure` (`encodeFailure`) scrubbed. */
  witFailure(f) {
    if (f.response) return { ...f, response: this.witResponse(f.response) };
    return { ...f, transport: f.transport && { ...f.transport, message: this.text(f.transport.message) } };
  }

  /**
   * The first `limit` bytes of a scrubbed body; when that cuts it (or `more` of it was never
   * read), without a secret begun at the cut.
   */
  prefix(body, limit, more = false) {
    const head = body.subarray(0, limit);
    return more || body.length > limit ? head.subarray(0, head.length - this.#partialAtEnd(head)) : head;
  }

  /**
   * A scrubber for a body passed on chunk by chunk: `push(chunk)` returns what can go on now,
   * holding back at most the secret's length - 1 bytes (a possible beginning of it) until the
   * next chunk or `finish()` shows what they are.
   */
  stream() {
    let held = Buffer.alloc(0);
    return {
      push: (chunk) => {
        if (!this.#text) return chunk;
        const out = this.bytes(Buffer.concat([held, chunk]));
        const keep = this.#partialAtEnd(out);
        held = Buffer.from(out.subarray(out.length - keep));
        return out.subarray(0, out.length - keep);
      },
      finish: () => held,
    };
  }

  /** How many bytes at the end of `data` are the secret's first ones (fewer than all). */
  #partialAtEnd(data) {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (let n = Math.min(this.#secret.length - 1, buf.length); n > 0; n -= 1) {
      if (buf.subarray(buf.length - n).equals(this.#secret.subarray(0, n))) return n;
    }
    return 0;
  }
}
