// The Policy: one guest instance and engine, driven by a thin async loop for real HTTP. Every
// decision (route, retry, rotate, fall back, wait, give up, messages) comes from the guest.
import { readFile } from 'node:fs/promises';
import {
  compile, instantiate, tagged, dispose, uint, speaks, encodeRoute, encodeFailure, encodeProgress, encodeRequest, encodeCredentials,
  encodeResponse, MAX_ERROR_BODY,
} from './bindings.js';
import { hostImports } from './host.js';
import { SystemClock } from './clock.js';
import { Events } from './events.js';
import { resolveSecrets, credentialInfo, Scrub } from './secrets.js';
import { send } from './http.js';
import { drive } from './drive.js';
import { httpCarrier } from './carrier.js';
import { ConfigError, GuestTrap, PayloadTooLarge, PolicyError, StateError, SwapError, Unsupported } from './errors.js';
import { StoreSync } from './store-sync.js';
import { FAULT_RULE, closedMessage, crashLoopMessage, describe, failedAction, finalError, succeeded as faultSucceeded } from './fault.js';

const DEFAULT_WASM = new URL('./policy.wasm', import.meta.url);
const MiB = 1 << 20;
/** Where `load` hands the constructor a store: the engine waits for the store's first load. */
const STORE = Symbol('store');

export class Policy {
  #config;
  #secrets;
  /** What the guest is told: `[{id, fingerprint}]`, from the secrets unless given. */
  #credentials;
  #clock;
  #events = new Events();
  /** Events the guest has emitted (a select or start-call that emitted none changed nothing). */
  #emitted = 0;
  #host;
  #entry;
  /** The live instance (undefined after a fault until a restart succeeds). */
  #guest;
  #engine;
  /**
   * The state after the last completed call that changed it: what a restart restores. Taken
   * after the calls that change it (see MUTATES), not after those that only read it.
   */
  #last;
  #failMode;
  #maxCrashes;
  #crashWindowMs;
  #maxPayloadBytes;
  /** The compiled policy a swap replaced, to fall back to in a crash loop. */
  #previous;
  /**
   * A healthy instance of `#previous` with no engine in it (it never faulted), kept so that
   * swapping back, or falling back in a crash loop, creates an engine in it from the snapshot
   * instead of instantiating again. Dropped as soon as anything fails in it.
   */
  #spare;
  /** Times (performance.now) of the faults within the crash window. */
  #faults = [];
  /** Why every call now fails closed (a crash loop with nothing to fall back to), if it does. */
  #closed;
  /** The fleet's shared state (store-sync.js), when loaded with a `store`. */
  #sync;

  /**
   * Loads the policy for `config` (an object or JSON text).
   * Options: `state` (a snapshot), `secrets` ({credentialId: secret}; default: the environment),
   * `wasm` (a path or bytes; default: the bundled policy), `clock`, `onEvent`, `send` (a sync
   * send for `callSync`), `seed` (for the guest's jitter when the config has none), `failMode`
   * ('open' or 'closed': what a call gets when the policy fails), `maxCrashes` and
   * `crashWindowMs` (that many faults within the window is a crash loop), `maxPayloadBytes`.
   */
  /**
   * @param {object | string} config
   * @param {import('./index.js').LoadOptions} [options]
   */
  static async load(config, options = {}) {
    const entry = await compile(await readWasm(options.wasm ?? DEFAULT_WASM));
    const { store, ...rest } = /** @type {any} */ (options);
    if (store === undefined || store === null) return new Policy(entry, config, rest);
    if (typeof store?.load !== 'function' || typeof store?.append !== 'function' || !store.fleet) {
      throw new TypeError('store must be a FileStore or a RedisStore (see openStore)');
    }
    const policy = new Policy(entry, config, /** @type {any} */ ({ ...rest, [STORE]: store }));
    await policy.#openStore(rest.state);
    return policy;
  }

  /**
   * @param {any} entry
   * @param {any} config
   * @param {import('./index.js').LoadOptions} [options]
   */
  constructor(entry, config, {
    state, secrets, credentials, clock, onEvent, send: syncSend, seed,
    failMode = 'open', maxCrashes = 3, crashWindowMs = 60_000, maxPayloadBytes = MiB, ...more
  } = {}) {
    if ('store' in more) throw new TypeError('a store needs Policy.load (its first load is asynchronous)');
    if (seed !== undefined && !(Number.isSafeInteger(seed) || typeof seed === 'bigint')) {
      throw new TypeError('seed must be an integer');
    }
    if (failMode !== 'open' && failMode !== 'closed') throw new TypeError(`failMode must be 'open' or 'closed', not ${failMode}`);
    if (!(Number.isSafeInteger(maxCrashes) && maxCrashes >= 1)) throw new TypeError('maxCrashes must be an integer >= 1');
    if (!(crashWindowMs >= 0)) throw new TypeError('crashWindowMs must be a number >= 0');
    if (!(Number.isSafeInteger(maxPayloadBytes) && maxPayloadBytes >= 0)) throw new TypeError('maxPayloadBytes must be an integer >= 0');
    this.#failMode = failMode;
    this.#maxCrashes = maxCrashes;
    this.#crashWindowMs = crashWindowMs;
    this.#maxPayloadBytes = maxPayloadBytes;
    if (state !== undefined && state !== null && typeof state !== 'string') state = JSON.stringify(state);
    this.#config = typeof config === 'string' ? config : JSON.stringify(config ?? null);
    this.#bound('the config', this.#config);
    if (state) this.#bound('the state', state);
    this.#secrets = resolveSecrets(parseOrEmpty(this.#config), secrets);
    this.#credentials = credentials ? encodeCredentials(credentials) : credentialInfo(this.#secrets);
    this.#clock = clock ?? new SystemClock();
    if (onEvent) this.#events.on(onEvent);
    const events = { emit: (event) => { this.#emitted += 1; this.#events.emit(event); } };
    this.#host = hostImports({
      clock: () => this.#clock, events, secrets: () => this.#secrets, send: syncSend, seed,
    });
    this.#entry = entry;
    this.#guest = instantiate(entry, this.#host);
    if (more[STORE]) {
      this.#sync = new StoreSync(more[STORE], this.#storeOps());
      return; // the engine starts in #openStore, from the store's state
    }
    this.#engine = this.#create(this.#guest, state ?? undefined);
    this.#last = this.#engine.snapshot();
  }

  /** Starts the engine from the store's state merged with `given` (see StoreSync.load). */
  async #openStore(given) {
    const text = given === undefined || given === null ? undefined : typeof given === 'string' ? given : JSON.stringify(given);
    const { state, known } = await this.#sync.load(text);
    if (state) this.#bound('the state', state);
    this.#engine = this.#create(this.#guest, state);
    this.#last = this.#engine.snapshot();
    // Nothing stored and nothing given: the fresh state is nothing to tell the fleet.
    this.#sync.started(known ?? (text === undefined ? this.#last : undefined));
  }

  /** What store-sync.js may do with this policy. */
  #storeOps() {
    const policy = this;
    return {
      snapshot: () => this.#last,
      changes: (since, now) => this.changes(since, now),
      merge: (a, b) => this.merge(a, b),
      fold: (states, nowMs, forgetAfterMs) => this.fold(states, nowMs, forgetAfterMs),
      absorb: (state) => this.absorb(state),
      notice: (rule, message) => this.#notice(rule, message),
      get live() {
        return speaks(policy.contract, '0.3.0');
      },
    };
  }

  /** A refresh from the store at a call's start (paced; see StoreSync.refresh). */
  #refresh() {
    return this.#sync?.refresh();
  }

  #create(guest, state) {
    const r = guest.create(this.#config, state, this.#credentials);
    if (r.err) throw new ConfigError(r.err);
    return r.ok;
  }

  /** Refuses text or bytes over the payload limit before they reach the guest. */
  #bound(what, payload) {
    const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (size > this.#maxPayloadBytes) throw new PayloadTooLarge(what, size, this.#maxPayloadBytes);
  }

  /**
   * Runs `fn(engine, guest)`; after a call that changed the state (`mutates`: MUTATES, READS,
   * WITH_AN_EVENT, or a function of the result saying whether it did), takes the snapshot a
   * restart would restore, before the caller sees the result, so no change a caller saw is lost. A throw out of the guest (a trap, or a bug)
   * may leave it half-updated, so it is replaced (see #fault) and `fallback(mode, why)` decides
   * the call's outcome; without a fallback the caller gets a GuestTrap.
   */
  #run(mutates, fn, fallback) {
    if (this.#closed !== undefined) return failed(this.#closed, 'closed', fallback);
    try {
      const emitted = this.#emitted;
      const out = fn(this.#engine, this.#guest);
      if (mutates === MUTATES || (mutates === WITH_AN_EVENT && this.#emitted !== emitted) || (typeof mutates === 'function' && mutates(out))) {
        this.#last = this.#engine.snapshot();
        this.#sync?.changed();
      }
      return out;
    } catch (e) {
      const why = describe(e);
      this.#fault(why);
      return failed(why, this.#failMode, fallback);
    }
  }

  /**
   * Restarts from the last good state; in a crash loop (maxCrashes within crashWindowMs) falls
   * back to the policy a swap replaced, or else fails every call closed until the next swap.
   */
  #fault(why) {
    // The instance may be trapped or half-updated: it is never called again.
    this.#guest = undefined;
    this.#engine = undefined;
    const now = performance.now();
    this.#faults = [...this.#faults.filter((t) => now - t <= this.#crashWindowMs), now];
    const n = this.#faults.length;
    const windowS = this.#crashWindowMs / 1000;
    const window = `${windowS} s`;
    if (n < this.#maxCrashes && this.#restart(this.#entry)) {
      return this.#notice(FAULT_RULE, `the policy failed (${why}); restarted from the last good state `
        + `(${n} of ${this.#maxCrashes} faults allowed within ${window})`);
    }
    this.#faults = [];
    const spare = this.#takeSpare();
    if (this.#previous && (this.#restart(this.#previous, spare) || (spare && this.#restart(this.#previous)))) {
      this.#entry = this.#previous;
      this.#previous = undefined;
      return this.#notice('host.policy-crash-loop', crashLoopMessage(n, windowS, why));
    }
    this.#closed = why;
    return this.#notice('host.policy-closed', closedMessage(n, windowS, why));
  }

  /** `entry` (in `spare`, or a fresh instance) from the last good state; false if that fails. */
  #restart(entry, spare) {
    try {
      const guest = spare ?? instantiate(entry, this.#host);
      const engine = this.#create(guest, this.#last);
      this.#guest = guest;
      this.#engine = engine;
      return true;
    } catch {
      return false; // a policy that fails even to start counts as part of the crash loop
    }
  }

  /** `guest` with `engine` dropped, to keep as the spare; undefined if dropping it failed. */
  #retire(guest, engine) {
    try {
      guest.drop(engine);
      return guest;
    } catch {
      return undefined;
    }
  }

  /** The spare instance, now owned by the caller (it is used at most once). */
  #takeSpare() {
    const spare = this.#spare;
    this.#spare = undefined;
    return spare;
  }

  #notice(rule, message) {
    this.#events.emit({ kind: 'notice', atMs: this.#host.nowMs(), route: undefined, rule, message });
  }

  /** Subscribes to the guest's status events; returns the unsubscribe function. */
  onEvent(listener) {
    return this.#events.on(listener);
  }

  /** The route to start with; throws a PolicyError saying per provider why there is none. */
  select() {
    this.#refresh();
    const r = this.#run(WITH_AN_EVENT, (e) => tagged(() => e.select()), (mode, why) => ({ err: { message: finalError(why).message, providers: [] } }));
    if (r.err) throw noRouteError(r.err);
    return r.ok;
  }

  /**
   * How a call that the host drives starts: `{route, delayMs, progress, rule, why}`. Send on
   * `route` after `delayMs` (a bigint; 0n = now, more when nothing is usable yet but the earliest
   * route fits the call's wait budget) and pass `progress` to the call's first `onFailure`.
   * Throws a PolicyError with the guest's final error (per provider why) when no route will do.
   */
  startCall() {
    this.#refresh();
    const r = this.#run(WITH_AN_EVENT, (e) => tagged(() => e.startCall()), (mode, why) => ({ err: finalError(why) }));
    if (r.err) throw new PolicyError(r.err);
    return r.ok;
  }

  /**
   * The guest's next action after `failure` ({status, headers, body} or {transport, message}),
   * with the route's secret taken out of it first, should the provider have echoed it.
   */
  onFailure(route, failure, progress) {
    const r = encodeRoute(route);
    const args = [r, new Scrub(this.#secrets.get(r.credential)).witFailure(encodeFailure(failure)), encodeProgress(progress)];
    return this.#run(MUTATES, (e) => e.onFailure(...args), (mode, why) => failedAction(mode, ...args, why));
  }

  onSuccess(route) {
    const r = encodeRoute(route);
    this.#run(MUTATES, (e) => e.onSuccess(r), () => undefined);
  }

  /** The request rewritten for `route` (URL, model, auth header name, timeouts). */
  prepare(route, request) {
    const args = [encodeRoute(route), encodeRequest(request)];
    this.#bound('the request body', args[1].body);
    const r = this.#run(READS, (e) => tagged(() => e.prepare(...args)));
    if (r.err) throw new PolicyError({ reason: 'bad-request', message: r.err.message });
    return r.ok;
  }

  /**
   * Whether a response `{status, headers, body}` is an answer: a 2xx whose body is no error (an
   * error event in an event stream, an error document). A loop calling `onSuccess`/`onFailure`
   * itself asks this instead of checking the status. Only the body's first 64 KiB are read; while
   * the policy is failed, a 2xx status is an answer.
   */
  succeeded(response) {
    if (!response || typeof response !== 'object') throw new TypeError('response must be {status, headers, body}');
    const r = encodeResponse(response.status, response.headers, response.body);
    r.body = r.body.subarray(0, MAX_ERROR_BODY);
    return this.#run(READS, (e, guest) => guest.succeeded(r), () => faultSucceeded(r.status));
  }

  /** What a failure from `provider` means; stateless. */
  classify(provider, failure) {
    if (typeof provider !== 'string') throw new TypeError('provider must be a string');
    const f = encodeFailure(failure);
    return this.#run(READS, (e, guest) => guest.classify(provider, f));
  }

  /**
   * The state as JSON text, for `Policy.load(config, {state})` in the next process. Taken once:
   * it is also the new last good state.
   */
  snapshot() {
    return this.#run(READS, (e) => (this.#last = e.snapshot()), () => this.#last);
  }

  check() {
    return this.#run(READS, (e) => e.check());
  }

  version() {
    return this.#run(READS, (e, guest) => guest.version());
  }

  /**
   * Merges what other processes stored into the running engine (contract 0.3.0; a store's
   * refresh calls it): a key a peer found exhausted is cooling here from now on. Throws
   * Unsupported for an older policy, StateError for a state the policy cannot read.
   */
  absorb(state) {
    if (!speaks(this.contract, '0.3.0')) throw new Unsupported('absorb', this.contract, '0.3.0');
    const text = typeof state === 'string' ? state : JSON.stringify(state);
    this.#bound('the state', text);
    const r = this.#run(MUTATES, (e) => tagged(() => e.absorb(text)));
    if (r.err) throw new StateError(r.err.message);
  }

  /** Two snapshots merged by the policy's rules. Throws StateError for one it cannot read. */
  merge(a, b) {
    if (typeof a !== 'string' || typeof b !== 'string') throw new TypeError('merge(a, b) takes two snapshots (JSON text)');
    const r = this.#run(READS, (e, guest) => guest.merge(a, b));
    if (r.err) throw new StateError(r.err.message);
    return r.ok;
  }

  /**
   * What `now` holds that `since` does not: `{state, keepUntilMs}` (a delta snapshot, and the
   * latest cooldown or open-circuit end in the whole `now` as a bigint, 0n when none: how long a
   * store keeps what it appends), or undefined when nothing that matters differs. An older policy
   * (contract 0.1/0.2) has no such function: the whole `now` when its text differs, with
   * keepUntilMs 0n (it tells no cooldown end, so a store keeps it `forgetAfterMs` alone).
   */
  changes(since, now) {
    if (typeof since !== 'string' || typeof now !== 'string') throw new TypeError('changes(since, now) takes two snapshots (JSON text)');
    if (!speaks(this.contract, '0.3.0')) return since === now ? undefined : { state: now, keepUntilMs: 0n };
    const r = this.#run(READS, (e, guest) => guest.changes(since, now));
    if (r.err) throw new StateError(r.err.message);
    return r.ok;
  }

  /**
   * `states` (a base and the deltas since) folded into one: `{state, keepUntilMs, unreadable:
   * [{index, message, newer}], forgotten}`, records with no sign of life in the `forgetAfterMs`
   * before `nowMs` forgotten (0: none); `keepUntilMs` (a bigint) is the latest cooldown or
   * open-circuit end in `state`, 0n when none. An older policy merges pairwise, forgets nothing
   * and tells no cooldown end (keepUntilMs 0n).
   */
  fold(states, nowMs, forgetAfterMs) {
    if (!Array.isArray(states) || states.some((s) => typeof s !== 'string')) throw new TypeError('states must be an array of snapshots (JSON text)');
    const [now, forget] = [uint(nowMs, 'nowMs', 64), uint(forgetAfterMs, 'forgetAfterMs', 64)];
    if (speaks(this.contract, '0.3.0')) {
      const r = this.#run(READS, (e, guest) => guest.fold(states, now, forget));
      if (r.err) throw new StateError(r.err.message);
      return r.ok;
    }
    let state;
    const unreadable = [];
    states.forEach((s, index) => {
      const r = this.#run(READS, (e, guest) => guest.merge(state ?? s, s));
      if (r.err) unreadable.push({ index, message: r.err.message, newer: /is newer than/.test(r.err.message) });
      else state = r.ok;
    });
    return { state, keepUntilMs: 0n, unreadable, forgotten: 0 };
  }

  /**
   * Flushes what this process owes the store (waiting for a save under way; one attempt bounded
   * by the store's timeout) and closes it. Without a store, nothing to do.
   */
  async close() {
    await this.#sync?.close();
  }

  /** What the store did for this process (saves with their wall times, refreshes, failures, folds); undefined without a store. */
  get storeStats() {
    const s = this.#sync?.stats;
    return s && { ...s, saveMs: [...s.saveMs] };
  }

  /** The contract version the running policy speaks: '0.1.0', '0.2.0' (deployed older builds) or '0.3.0'. */
  get contract() {
    return this.#entry.contract;
  }

  /** Replaces the secrets ({credentialId: secret}, or from the environment when omitted). */
  setSecrets(secrets) {
    this.#secrets = resolveSecrets(parseOrEmpty(this.#config), secrets);
    this.setCredentials(credentialInfo(this.#secrets));
  }

  /** Tells the guest which credentials exist (`[{id, fingerprint}]`); `setSecrets` calls it. */
  setCredentials(credentials) {
    this.#credentials = encodeCredentials(credentials);
    // On a fault the restart hands the guest the new credentials with the last good state.
    this.#run(MUTATES, (e) => e.setCredentials(this.#credentials), () => undefined);
  }

  /**
   * A driven call of `request` (contract 0.2.0): `{next(input) -> step, close()}`, the guest's
   * `driven-call` with faults contained (a fault makes the step a give-up); undefined for a
   * policy without one (0.1.0). `timeoutMs` is the caller's own timeout: the call's deadline is
   * the earlier of it and the config's `deadline_ms`. `call` carries the steps out; this is for
   * an executor of one's own.
   */
  /**
   * @param {import('./index.js').Request} request
   * @param {{timeoutMs?: number | bigint}} [options]
   */
  begin(request, { timeoutMs } = {}) {
    if (this.contract === '0.1.0') return undefined;
    this.#refresh();
    const req = encodeRequest(request);
    this.#bound('the request body', req.body);
    const options = { timeoutMs: timeoutMs === undefined ? undefined : uint(timeoutMs, 'timeoutMs', 64) };
    const call = this.#run(READS, (e) => e.begin(req, options), (mode, why) => { throw new PolicyError(finalError(why)); });
    const engine = this.#engine;
    const gaveUp = (why) => ({
      kind: 'give-up', outbound: undefined, withinMs: 0n, commit: undefined, deliver: new Uint8Array(),
      error: finalError(why), attempts: [], route: undefined, rule: FAULT_RULE, why,
    });
    return {
      next: (input) => {
        if (this.#engine === engine) return this.#run(stepChanges, () => call.next(input), (mode, why) => gaveUp(why));
        // Begun before a swap or restart: it ends on the instance it began on (what it records
        // there is not carried over), and a failure there is no fault of the running one.
        try {
          return call.next(input);
        } catch (e) {
          return gaveUp(describe(e));
        }
      },
      close: () => dispose(call),
    };
  }

  /**
   * Carries `request` ({path, method, headers, body}) through the policy. Resolves, once the
   * policy has committed to an answer, to `{response, route, ended}`: a fetch Response whose
   * body comes as the policy passes it on (a stream's events as they arrive), the route that
   * answered, and a promise of `{route, attempts, error}` once the body has been read to its
   * end (`error` set when a committed answer broke off: a stream then ends with an error event
   * in its own format, a whole answer's read fails). Rejects with a PolicyError carrying the
   * guest's final message when nothing could be answered, or with `signal`'s reason.
   * Options: `signal` (cancels the attempt in flight and any wait, and a committed body),
   * `timeoutMs` (the caller's own deadline for the whole call), `fetch` (given a `dispatcher`
   * for a fresh connection, which it may ignore), `carrier` (where sends go instead of fetch:
   * see carrier.js; scenarios use a scripted one in virtual time).
   * A 0.1.0 policy has no driven call: its calls go through the host-driven loop (`startCall`,
   * fetch, `onFailure`), which hands an event stream on unread.
   */
  /**
   * @param {import('./index.js').Request} request
   * @param {import('./index.js').CallOptions} [options]
   */
  async call(request, { signal, timeoutMs, fetch: fetchImpl, carrier } = {}) {
    // An async call waits for a due refresh (bounded by the store's timeout); `begin` then finds
    // it done. A sync path (select, begin) goes on from memory while a Redis refresh runs.
    await this.#refresh();
    const call = this.begin(request, { timeoutMs });
    if (!call) return this.#callWithoutDriving(request, { signal, fetchImpl });
    return drive(call, { carrier: carrier ?? httpCarrier({ fetchImpl }), secrets: this.#secrets, clock: this.#clock, signal });
  }

  /** A 0.1.0 policy's call: the decision API over fetch (see `call`). */
  async #callWithoutDriving(request, { signal, fetchImpl }) {
    const req = encodeRequest(request);
    this.#bound('the request body', req.body);
    const attempts = [];
    const start = this.startCall();
    if (start.delayMs > 0n) await this.#clock.wait(delayMs(start.delayMs), signal);
    let { route, progress } = start;
    let fresh = false;
    for (;;) {
      const outbound = this.prepare(route, req);
      outbound.freshConnection = fresh;
      const atMs = BigInt(Math.floor(this.#clock.now()));
      const sent = await send(outbound, this.#secrets.get(route.credential), { signal, fetchImpl, succeeded: (r) => this.succeeded(r) });
      if (sent.ok) {
        this.onSuccess(route);
        attempts.push({ route, atMs, outcome: String(sent.response.status), classified: undefined, action: undefined });
        return { response: sent.response, route, ended: Promise.resolve({ route, attempts, error: undefined }) };
      }
      const action = this.onFailure(route, sent.failure, progress);
      const outcome = sent.failure.transport ?? String(sent.failure.status);
      attempts.push({ route, atMs, outcome, classified: action.classified, action });
      if (action.kind === 'give-up' || !action.route) {
        throw new PolicyError(action.error ?? { reason: action.classified.reason, message: action.why }, attempts);
      }
      if (action.delayMs > 0n) await this.#clock.wait(delayMs(action.delayMs), signal);
      fresh = action.freshConnection;
      route = action.route;
      progress = action.progress;
    }
  }

  /**
   * The guest-driven loop (`engine.call`) over the synchronous `send` given to `load`: for
   * hosts that can send synchronously, and for replaying scenarios in virtual time.
   */
  callSync(request) {
    const req = encodeRequest(request);
    this.#bound('the request body', req.body);
    const r = this.#run(MUTATES, (e) => tagged(() => e.call(req)), (mode, why) => ({ err: { error: finalError(why), attempts: [] } }));
    if (r.err) throw new PolicyError(r.err.error, r.err.attempts);
    return r.ok;
  }

  /**
   * Switches to another policy component (a path or bytes), carrying the state. The new one must
   * instantiate, accept the config and current state, and pass `check()`; on any failure the
   * current policy stays and a SwapError says why. Resolves to the new `version()`. Swapping back
   * to the build this one replaced reuses its instance (a restore, no instantiation).
   */
  async swap(wasm) {
    let entry;
    try {
      entry = await compile(await readWasm(wasm));
    } catch (e) {
      throw new SwapError(e.message, e);
    }
    // From here on everything is synchronous: no call can change the state under the swap.
    const current = this.snapshot(); // first: a fault here restarts (or falls back) before the swap
    const spare = entry === this.#previous ? this.#takeSpare() : undefined;
    let guest;
    let engine;
    let state;
    let version;
    try {
      guest = spare ?? instantiate(entry, this.#host);
      engine = this.#create(guest, current);
      const report = engine.check();
      if (!report.ok) throw new Error(`check failed: ${report.findings.join('; ')}`);
      state = engine.snapshot();
      version = guest.version();
    } catch (e) {
      throw new SwapError(e.message, e); // the spare, if used, may be trapped: it is gone
    }
    if (entry !== this.#entry) {
      this.#previous = this.#entry;
      this.#spare = this.#guest && this.#retire(this.#guest, this.#engine);
    }
    this.#entry = entry;
    this.#guest = guest;
    this.#engine = engine;
    this.#last = state;
    this.#faults = [];
    this.#closed = undefined;
    this.#sync?.changed();
    return version;
  }
}

/**
 * Whether a call can change the engine's state (a snapshot costs as much as a decision, so it
 * is taken only after those): MUTATES, READS (the guest takes `&self`), or WITH_AN_EVENT for
 * select and start-call, which change it only together with an event (a promise of the WIT
 * contract, held by host/rust/tests/promises.rs).
 */
const MUTATES = 'mutates';
const READS = 'reads';
const WITH_AN_EVENT = 'with-an-event';

/**
 * Whether a driven call's step changed the state: a start, a failure's decision (a send, a
 * sleep, a give-up), a commit (the route answered) do; a read of the next bytes does not, so
 * passing an answer on costs no snapshot per event.
 */
const stepChanges = (step) => step.kind !== 'read' || step.commit !== undefined;

async function readWasm(wasm) {
  if (typeof wasm === 'string' || wasm instanceof URL) {
    try {
      return new Uint8Array(await readFile(wasm));
    } catch (e) {
      const hint = wasm === DEFAULT_WASM ? ' (build it with scripts/build-wasm.sh)' : '';
      throw new Error(`cannot read the policy component ${wasm}${hint}: ${e.message}`);
    }
  }
  return wasm;
}

function parseOrEmpty(text) {
  try {
    return JSON.parse(text) ?? {};
  } catch {
    return {}; // the guest reports the bad JSON with its path
  }
}

/**
 * A guest delay (u64, a bigint) as milliseconds for a clock. Delays stay within the wait budget,
 * so this is a guard: a bigint past 2^53 must not turn into an imprecise or negative Number.
 */
function delayMs(ms) {
  if (typeof ms !== 'bigint' || ms < 0n || ms > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`the policy asked for a wait of ${ms} ms, which no clock can carry out`);
  }
  return Number(ms);
}

/** A call the policy failed in: `fallback(mode, why)`, or a GuestTrap when there is none. */
function failed(why, mode, fallback) {
  if (!fallback) throw new GuestTrap(`the failover policy failed (${why}); the host restored the last good state`);
  return fallback(mode, why);
}

/** A failed `select` as an error: the guest's message, earliest time and per-provider truth. */
function noRouteError(noRoute) {
  return new PolicyError({ reason: 'unknown', message: noRoute.message, retryAtMs: noRoute.earliestMs, providers: noRoute.providers });
}
