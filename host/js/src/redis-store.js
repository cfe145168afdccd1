// The Redis store of tests/fleet/README.md ("Redis"), on node-redis (`@redis/client`): a base
// snapshot at `P`, one delta per entry of the stream `P:log`, `P:folded` naming the last entry
// folded into `P`. Every operation is bounded by `timeoutMs`; the connection is made lazily, never
// retried by the client on its own (store-sync.js paces retries), and does not keep a finished
// process alive. The commands are raw (RESP2 replies), exactly the spec's.
import { readFileSync } from 'node:fs';
import { createClient, WatchError } from '@redis/client';
import { StoreError, StoreRefused, StoreUnavailable } from './errors.js';
import { fleetOptions } from './store-options.js';

/** How long a value the policy could not read is kept aside for someone to look at. */
const ASIDE_TTL_MS = 7 * 24 * 3600 * 1000;
/** Entries one refresh reads at most; the rest come at the next call. */
const READ_COUNT = 512;
/** How often a pending operation's bound is checked (see `#op`'s `within`). */
const TICK_MS = 25;
/** The client's own connect bound, only a backstop: `#op` bounds every connect (connectTimeoutMs). */
const CLIENT_CONNECT_TIMEOUT_MS = 60_000;

export class RedisStore {
  #url;
  #key;
  #timeoutMs;
  #connectTimeoutMs;
  #ca;
  #tls;
  #client;
  #connecting;
  fleet;

  /**
   * `url`: `redis://[user:password@]host:port[/db]` or `rediss://` (TLS; `caFile` names the CA
   * to trust, PEM). Options: `name` (the key is `failover-policy:<name>`), `timeoutMs` (200: each
   * operation on a connection), `connectTimeoutMs` (1000: setting a connection up, TCP, TLS and
   * AUTH, which a cold process on a busy machine needs more than 200 ms for; it happens once, and
   * after a failure at most once per `retryMs`), `caFile`, and the fleet options of store-options.js.
   */
  /**
   * @param {string} url
   * @param {import('./index.js').RedisStoreOptions} [options]
   */
  constructor(url, { name, timeoutMs = 200, connectTimeoutMs = 1000, caFile, ...fleet } = /** @type {any} */ ({})) {
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`the Redis store needs a redis:// or rediss:// URL, not ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new TypeError(`the Redis store needs a redis:// or rediss:// URL, not ${parsed.protocol}//`);
    }
    if (typeof name !== 'string' || name === '') throw new TypeError('the Redis store needs a name (the key is failover-policy:<name>)');
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError(`timeoutMs must be a number > 0, not ${timeoutMs}`);
    if (!(Number.isFinite(connectTimeoutMs) && connectTimeoutMs > 0)) throw new TypeError(`connectTimeoutMs must be a number > 0, not ${connectTimeoutMs}`);
    if (caFile !== undefined && parsed.protocol !== 'rediss:') throw new TypeError('caFile is for TLS: use a rediss:// URL');
    try {
      this.#ca = caFile === undefined ? undefined : readFileSync(caFile);
    } catch (e) {
      throw new TypeError(`cannot read the CA file ${caFile}: ${e.message}`);
    }
    this.#tls = parsed.protocol === 'rediss:';
    this.#url = url;
    this.#key = `failover-policy:${name}`;
    this.#timeoutMs = timeoutMs;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.fleet = fleetOptions(fleet, ['name', 'timeoutMs', 'connectTimeoutMs', 'caFile']);
    // Never print the password.
    parsed.password = parsed.password ? '***' : '';
    this.where = `state store ${parsed.href} ${this.#key}`;
  }

  /** Base, fold mark and every entry in one transaction, folded: `{state, last, count, setAside}`. */
  async load(fold) {
    const P = this.#key;
    const [raw, folded, entries] = await this.#op('load', (c) => c.multi()
      .addCommand(['GET', P]).addCommand(['GET', `${P}:folded`]).addCommand(['XRANGE', `${P}:log`, '-', '+']).exec());
    const states = entries.map(entryState);
    const r = fold(raw === null ? states : [raw, ...states]);
    const bad = raw === null ? undefined : r.unreadable.find((u) => u.index === 0);
    if (bad?.newer) throw new StoreRefused(`${this.where} holds state this policy cannot read (${bad.message}); it is left untouched`);
    const setAside = bad ? await this.#setAsideBase(raw, bad.message) : undefined;
    const last = entries.length > 0 ? entries.at(-1)[0] : folded ?? '0-0';
    return { state: r.state, last, count: entries.length, setAside };
  }

  /** What peers appended since `last`, in one round trip; a fold past `last` means: load again. */
  async poll(last, fold) {
    if (last === undefined) return { ...(await this.load(fold)), reloaded: true };
    const P = this.#key;
    const [folded, read] = await this.#op('refresh', (c) => c.multi()
      .addCommand(['GET', `${P}:folded`]).addCommand(['XREAD', 'COUNT', String(READ_COUNT), 'STREAMS', `${P}:log`, last]).execAsPipeline());
    if (folded !== null && compareIds(folded, last) > 0) return { ...(await this.load(fold)), reloaded: true };
    const entries = read === null ? [] : read[0][1];
    if (entries.length === 0) return { state: undefined, last, count: 0 };
    return { state: fold(entries.map(entryState)).state, last: entries.at(-1)[0], count: entries.length, more: entries.length === READ_COUNT };
  }

  /**
   * One entry appended and the log's TTL renewed, in one round trip. `delta` is `changes`'
   * `{state, keepUntilMs}`: the log lives at least until the appender's latest cooldown ends.
   */
  async append(delta) {
    const P = this.#key;
    // Outside the operation: a bad keep-until is the policy's fault, not a store failure.
    const ttl = keyTtlMs(delta.keepUntilMs, Date.now(), this.fleet.forgetAfterMs);
    await this.#op('save', (c) => {
      const m = c.multi().addCommand(['XADD', `${P}:log`, '*', 'state', delta.state]);
      if (ttl !== undefined) m.addCommand(['PEXPIRE', `${P}:log`, String(ttl)]);
      return m.execAsPipeline();
    });
  }

  shouldFold(seen, foldAfter) {
    return seen > foldAfter;
  }

  /**
   * Base + log folded into a new base, the folded entries trimmed, all in one WATCHed
   * transaction on a connection of its own (another command's EXEC on a shared connection would
   * end the WATCH). Another process folding first makes EXEC fail: then nothing is retried.
   */
  async fold(fold) {
    const P = this.#key;
    return this.#op('fold', (shared) => watched(shared, async (c) => {
      await c.sendCommand(['WATCH', P, `${P}:folded`]);
      // Read without MULTI: an EXEC here would end the WATCH.
      const [raw, , entries] = await c.multi()
        .addCommand(['GET', P]).addCommand(['GET', `${P}:folded`]).addCommand(['XRANGE', `${P}:log`, '-', '+']).execAsPipeline();
      if (entries.length === 0) return false;
      const states = entries.map(entryState);
      const all = raw === null ? states : [raw, ...states];
      const r = fold(all);
      if (r.unreadable.some((u) => u.newer)) return false; // a newer policy's entries: it folds
      const first = raw === null ? 0 : 1;
      const lastId = entries.at(-1)[0];
      const stamp = Date.now();
      const m = c.multi();
      // The fold's own keep-until (0 with no state): the base and mark live as long as it says.
      const ttl = keyTtlMs(r.keepUntilMs, stamp, this.fleet.forgetAfterMs);
      if (r.state !== undefined) m.addCommand(ttl === undefined ? ['SET', P, r.state] : ['SET', P, r.state, 'PX', String(ttl)]);
      else m.addCommand(['DEL', P]);
      m.addCommand(ttl === undefined ? ['SET', `${P}:folded`, lastId] : ['SET', `${P}:folded`, lastId, 'PX', String(ttl)]);
      m.addCommand(['XTRIM', `${P}:log`, 'MINID', nextId(lastId)]);
      const corrupt = r.unreadable.filter((u) => u.index >= first).map((u) => all[u.index]);
      if (raw !== null && r.unreadable.some((u) => u.index === 0)) corrupt.unshift(raw);
      if (corrupt.length > 0) m.addCommand(['SET', `${P}:corrupt-${stamp}`, corrupt.join('\n'), 'PX', String(ASIDE_TTL_MS)]);
      await m.exec();
      return true;
    }));
  }

  /** Ends the connection (what was owed is flushed by store-sync.js before). */
  async close() {
    const c = this.#client;
    this.#client = undefined;
    if (c) c.destroy();
  }

  /** An unreadable base moved to `P:corrupt-<ms>`, only if it is still the value read. */
  async #setAsideBase(raw, why) {
    const P = this.#key;
    const aside = `${P}:corrupt-${Date.now()}`;
    const moved = await this.#op('set aside', (shared) => watched(shared, async (c) => {
      await c.sendCommand(['WATCH', P]);
      if (await c.sendCommand(['GET', P]) !== raw) return false;
      await c.multi().addCommand(['SET', aside, raw, 'PX', String(ASIDE_TTL_MS)]).addCommand(['DEL', P]).exec();
      return true;
    }));
    return moved ? `${this.where}: the base state could not be read (${why}); it was moved to ${aside}` : undefined;
  }

  /**
   * `fn(client)` bounded by the timeout, connecting first when needed. The pending timer keeps
   * the process alive until the answer (the socket itself does not), so an exit flush completes.
   * A timeout or a lost connection drops the client: the next operation connects anew.
   */
  async #op(what, fn) {
    let timer;
    // The bound counts the event loop's time, not the wall's: while the loop is blocked (the
    // process compiling a policy, a machine short of CPU) an answer that has arrived cannot be
    // read, and timers run before I/O when it wakes. Measured in ticks, a stall counts as one
    // tick, so a stalled process is not taken for a store that did not answer; a silent store
    // still times out after `ms`.
    const within = (ms, doing) => new Promise((_, reject) => {
      let spent = 0;
      let last = performance.now();
      const tick = () => {
        const now = performance.now();
        spent += Math.min(now - last, 2 * TICK_MS);
        last = now;
        if (spent >= ms) reject(new StoreUnavailable(`${this.where}: ${what} got no answer within ${ms} ms${doing}`));
        else timer = setTimeout(tick, Math.min(TICK_MS, ms - spent));
      };
      timer = setTimeout(tick, Math.min(TICK_MS, ms));
    });
    try {
      const client = this.#client?.isReady ? this.#client
        : await Promise.race([this.#connect(), within(this.#connectTimeoutMs, ' (connecting)')]);
      clearTimeout(timer);
      return await Promise.race([fn(client), within(this.#timeoutMs, '')]);
    } catch (e) {
      if (e instanceof StoreError) {
        if (e instanceof StoreUnavailable) this.#drop();
        throw e;
      }
      const message = String(e?.message ?? e);
      // Refusals (WRONGPASS, NOPERM, a wrong type) say what is wrong; anything else is the link.
      if (/^(WRONGPASS|NOAUTH|NOPERM|WRONGTYPE|ERR)/.test(message)) throw new StoreError(`${this.where}: ${what}: ${message}`, e);
      this.#drop();
      throw new StoreUnavailable(`${this.where}: ${what}: ${message || e?.code || 'connection failed'}`, e);
    } finally {
      clearTimeout(timer);
    }
  }

  #connect() {
    if (this.#client?.isReady) return Promise.resolve(this.#client);
    if (!this.#connecting) {
      this.#drop();
      const socket = /** @type {any} */ ({
        // The bound is #op's, which tells a stalled event loop from a silent store; the client's
        // own timer (a socket idle timeout) would fire first after any stall.
        connectTimeout: CLIENT_CONNECT_TIMEOUT_MS,
        // No reconnect loop of the client's own: while Redis is down, store-sync.js asks again
        // only after `retryMs`, so a down Redis sees one connection attempt per pause.
        reconnectStrategy: false,
        ...(this.#tls ? { tls: true, ...(this.#ca ? { ca: this.#ca } : {}) } : {}),
      });
      const client = createClient({ url: this.#url, RESP: 2, disableOfflineQueue: true, socket });
      client.on('error', () => {}); // every failure also rejects the command that met it
      this.#connecting = client.connect().then(() => {
        client.unref(); // an idle connection must not keep a finished process alive
        this.#client = client;
        return client;
      }, (e) => {
        client.destroy();
        throw e;
      }).finally(() => { this.#connecting = undefined; });
    }
    return this.#connecting;
  }

  #drop() {
    const c = this.#client;
    this.#client = undefined;
    try {
      c?.destroy();
    } catch {
      // already closed
    }
  }
}

/** An XRANGE/XREAD entry `[id, [field, value, ...]]`'s `state` field. */
function entryState([id, fields]) {
  const at = fields.indexOf('state');
  // An entry without the field reaches the policy as text it refuses, and is set aside at a fold.
  return at >= 0 && at % 2 === 0 ? String(fields[at + 1]) : `entry ${id} has no state field`;
}

function parseId(id) {
  const [ms, seq] = String(id).split('-');
  return [BigInt(ms), BigInt(seq ?? 0)];
}

function compareIds(a, b) {
  const [x, y] = [parseId(a), parseId(b)];
  return x[0] === y[0] ? (x[1] === y[1] ? 0 : x[1] > y[1] ? 1 : -1) : x[0] > y[0] ? 1 : -1;
}

/** The smallest stream id after `id`. */
function nextId(id) {
  const [ms, seq] = parseId(id);
  return `${ms}-${seq + 1n}`;
}

/**
 * Redis refuses a PX or PEXPIRE whose end would pass 2^63 ms (a u64 keep-until can be anything):
 * capped at 2^53 ms (about 285,000 years) a key is kept as good as forever with a TTL it accepts.
 */
/**
 * `fn(c)` for a WATCHed transaction on a connection of its own (another command's EXEC on the
 * shared one would end the WATCH); false when another writer changed a watched key first.
 */
async function watched(shared, fn) {
  const c = shared.duplicate();
  c.on('error', () => {}); // failures reach the commands' promises
  try {
    await c.connect();
    return await fn(c);
  } catch (e) {
    if (e instanceof WatchError) return false;
    throw e;
  } finally {
    c.destroy();
  }
}

const MAX_TTL_MS = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The TTL of every fleet key (tests/fleet/README.md, "TTL of every key"): `keepUntilMs - nowMs`,
 * at least `forgetAfterMs`, so a key outlives both the latest cooldown the guest names and the
 * forget bound; undefined (no PX, no PEXPIRE) when nothing is ever forgotten (`forgetAfterMs` 0).
 * `keepUntilMs` is the guest's (`changes`' delta or `fold`'s folded; 0 when none, and from a
 * policy before contract 0.3.0): the host never reads a snapshot for it.
 */
export function keyTtlMs(keepUntilMs, nowMs, forgetAfterMs) {
  const [keep, now, forget] = [
    millis(keepUntilMs, 'keepUntilMs'), millis(nowMs, 'nowMs'), millis(forgetAfterMs, 'forgetAfterMs')];
  if (forget === 0n) return undefined;
  const ttl = keep - now > forget ? keep - now : forget;
  return Number(ttl < MAX_TTL_MS ? ttl : MAX_TTL_MS);
}

/** A time or duration in ms (an integer >= 0, a number or a bigint) as a bigint. */
function millis(v, what) {
  if (typeof v === 'bigint' ? v >= 0n : Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  const shown = typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? JSON.stringify(v) : String(v);
  throw new TypeError(`${what} must be an integer >= 0 (ms), not ${shown}`);
}
