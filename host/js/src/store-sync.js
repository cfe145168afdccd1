// The per-process side of the fleet's shared state (tests/fleet/README.md), the same over every
// store: what this process knows the store holds (`known`), where it read the log up to
// (`last`), what it still owes, when it may refresh, the pause after a failure, and the flush on
// close and at exit. A store (file-store.js, redis-store.js) only moves text; every merge is the
// guest's (`ops`), and so is how long a store keeps what it writes (`keepUntilMs`).
import { StoreError } from './errors.js';

/** Every StoreSync of this process that may owe a save, for the one pair of exit hooks. */
const open = new Set();
let hooked = false;

function hookExit() {
  if (hooked) return;
  hooked = true;
  // beforeExit comes when the event loop ran dry (not after process.exit()): an async flush of
  // what is owed can still run, bounded by the store's timeout. Each sync tries once per change,
  // so a store that stays down cannot keep the process alive by re-arming beforeExit.
  process.on('beforeExit', () => {
    for (const sync of open) sync.flushAtExit();
  });
  // 'exit' runs after process.exit() too, but only synchronous work completes there: a store
  // that can append synchronously (the file store) writes what is still owed.
  process.on('exit', () => {
    for (const sync of open) sync.flushSync();
  });
}

/**
 * `ops` is the running policy's side: `snapshot()` (the state after the last change),
 * `changes(since, now)` (a `{state, keepUntilMs}` delta or undefined), `merge(a, b)`,
 * `fold(states, nowMs, forgetAfterMs)` (`{state, keepUntilMs, unreadable, forgotten}`),
 * `absorb(state)`, `live` (the policy can absorb: contract 0.3.0) and `notice(rule, message)`.
 * A store's `append` takes the delta record; its `load`, `poll` and `fold` take a fold function.
 */
export class StoreSync {
  #store;
  #ops;
  #options;
  /** The state this process knows the store holds; undefined: nothing known, owe the whole state. */
  #known;
  /** The store's position after what this process read (opaque to this module). */
  #last;
  /** Log entries seen since the base (loaded, read or appended): past `foldAfter`, fold. */
  #seen = 0;
  /** Changes made (counted) and the count covered by the last successful save. */
  #changed = 0;
  #saved = 0;
  /** The change count the exit flush last tried, so a down store is tried once per change. */
  #exitTried = -1;
  #saving;
  #refreshing;
  #folding;
  #nextRefreshAt = 0;
  /** Until when (Date.now) the store is not asked again after a failure. */
  #pausedUntil = 0;
  #retryTimer;
  #closing;
  #closed = false;
  stats = { saves: 0, saveMs: /** @type {number[]} */ ([]), refreshes: 0, failures: 0, folds: 0 };

  /** `store`: a FileStore or RedisStore (its `fleet` holds the options of store-options.js). */
  constructor(store, ops) {
    this.#store = store;
    this.#ops = ops;
    this.#options = store.fleet;
  }

  /**
   * The state to start from: the store's (folded), merged with `given` when both exist. A store
   * that cannot be reached costs its timeout once: the process starts from `given`, refreshes
   * pause `retryMs`, and the first save that works appends the whole state. A newer-schema base
   * is refused (StoreRefused) and left untouched.
   */
  async load(given) {
    open.add(this);
    hookExit();
    let stored;
    try {
      stored = await this.#store.load(this.#folder(this.#options.forgetAfterMs));
    } catch (e) {
      if (!(e instanceof StoreError) || e.name === 'StoreRefused') {
        open.delete(this);
        throw e;
      }
      this.#failed(e);
      return { state: given, known: undefined };
    }
    this.#took(stored);
    const state = stored.state && given ? this.#ops.merge(stored.state, given) : stored.state ?? given;
    // With nothing stored and nothing given, the engine's first state is what the store "holds".
    return { state, known: stored.state };
  }

  /** Sets what the store is known to hold once the engine exists (see `load`). */
  started(known) {
    this.#known = known;
    // Something given that the store does not hold yet is owed at once.
    if (known === undefined || this.#ops.changes(known, this.#ops.snapshot()) !== undefined) this.changed();
  }

  /** After every state change: a save soon, never in the caller's way. */
  changed() {
    if (this.#closed) return;
    this.#changed += 1;
    this.#kick();
  }

  /**
   * At a call's start: reads what peers stored, at most every `refreshMs` and not while paused.
   * Returns undefined when done synchronously (the file store) or nothing was due, else a
   * promise that never rejects (Redis): async callers await it, sync ones go on from memory.
   */
  refresh() {
    if (!this.#ops.live || this.#closed || this.#refreshing) return this.#refreshing;
    const now = Date.now();
    if (now < this.#nextRefreshAt || now < this.#pausedUntil) return undefined;
    this.#nextRefreshAt = now + this.#options.refreshMs;
    let read;
    try {
      read = this.#store.poll(this.#last, this.#folder(0));
    } catch (e) {
      this.#failed(e);
      return undefined;
    }
    if (!(read instanceof Promise)) {
      try {
        this.#absorb(read);
      } catch (e) {
        this.#failed(e);
      }
      return undefined;
    }
    this.#refreshing = read.then((r) => this.#absorb(r)).catch((e) => this.#failed(e)).finally(() => { this.#refreshing = undefined; });
    return this.#refreshing;
  }

  /**
   * Waits for the save under way, then flushes what is owed (one bounded attempt) and any fold it
   * started; closes the store.
   */
  close() {
    this.#closing ??= (async () => {
      clearTimeout(this.#retryTimer);
      await this.#refreshing;
      await this.#saving;
      if (this.#owes()) {
        this.#pausedUntil = 0;
        await this.#saveLoop();
      }
      await this.#folding;
      this.#closed = true;
      clearTimeout(this.#retryTimer); // a change during the close may have armed it
      open.delete(this);
      await this.#store.close();
    })();
    return this.#closing;
  }

  /** Whether a change has not reached the store yet. */
  #owes() {
    return this.#saved < this.#changed;
  }

  /** beforeExit: one flush attempt per change (see hookExit). */
  flushAtExit() {
    if (this.#closed || !this.#owes() || this.#exitTried === this.#changed) return;
    this.#exitTried = this.#changed;
    this.#pausedUntil = 0;
    this.#kick();
  }

  /** 'exit': what is still owed, appended synchronously where the store can (the file store). */
  flushSync() {
    if (this.#closed || !this.#owes() || !this.#store.appendSync) return;
    try {
      const delta = this.#delta();
      if (delta !== undefined) this.#store.appendSync(delta);
      this.#saved = this.#changed;
    } catch {
      // Nothing can be reported any more at exit; the store keeps what it had.
    }
  }

  #kick() {
    if (this.#closed || this.#saving) return;
    const paused = this.#pausedUntil - Date.now();
    if (paused > 0) {
      // Saves pause with the store (the change stays owed) and go out when the pause ends, not
      // at the next change: a process that changes nothing more would otherwise keep its peers
      // from learning what it found until it exits.
      this.#retryLater(paused);
      return;
    }
    // setImmediate: the save runs after the caller's current turn, so an answer never waits on it.
    this.#saving = new Promise((resolve) => setImmediate(resolve)).then(() => this.#saveLoop()).finally(() => { this.#saving = undefined; });
  }

  async #saveLoop() {
    while (this.#owes()) {
      const covered = this.#changed;
      const started = performance.now();
      try {
        const delta = this.#delta();
        if (delta !== undefined) {
          await this.#store.append(delta);
          // Advanced only after the append worked: a failed one stays in the next delta.
          this.#known = this.#known === undefined ? delta.state : this.#ops.merge(this.#known, delta.state);
          this.#seen += 1;
          this.stats.saves += 1;
          this.stats.saveMs.push(performance.now() - started);
        }
        this.#saved = covered;
      } catch (e) {
        this.#failed(e);
        this.#retryLater();
        return;
      }
    }
    this.#maybeFold();
  }

  /**
   * What this process learned that the store does not hold yet, as `{state, keepUntilMs}`;
   * undefined: nothing. With nothing known to be stored (an empty store, or one that could not
   * be loaded), the guest's delta from nothing (`''`), which leaves out records that say nothing.
   */
  #delta() {
    return this.#ops.changes(this.#known ?? '', this.#ops.snapshot());
  }

  /** After a failed or paused save, the owed state is tried again once the pause ends, change or not. */
  #retryLater(ms = this.#options.retryMs) {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#kick(), ms);
    this.#retryTimer.unref(); // a pending retry must not hold a finished process: the exit hooks flush
  }

  #absorb(read) {
    this.stats.refreshes += 1;
    this.#pausedUntil = 0;
    if (read.reloaded) this.#seen = 0;
    this.#last = read.last;
    this.#seen += read.count;
    if (read.state !== undefined) {
      this.#ops.absorb(read.state);
      this.#known = this.#known === undefined ? read.state : this.#ops.merge(this.#known, read.state);
    }
    if (read.more) this.#nextRefreshAt = 0; // a capped read: the rest at the next call
    this.#maybeFold();
  }

  /** Folding is optional work: losing the race or failing skips it; nothing is lost either way. */
  #maybeFold() {
    if (this.#folding || this.#closed || !this.#store.shouldFold(this.#seen, this.#options.foldAfter)) return;
    this.#folding = this.#store.fold(this.#folder(this.#options.forgetAfterMs))
      .then((done) => {
        if (done) {
          this.stats.folds += 1;
          this.#seen = 0;
        }
      }, (e) => this.#failed(e))
      .finally(() => { this.#folding = undefined; });
  }

  /** The guest's fold of a list of states, now, forgetting after `forgetAfterMs`. */
  #folder(forgetAfterMs) {
    return (states) => (states.length === 0
      ? { state: undefined, keepUntilMs: 0n, unreadable: [], forgotten: 0 }
      : this.#ops.fold(states, Date.now(), forgetAfterMs));
  }

  #took(stored) {
    this.#last = stored.last;
    this.#seen = stored.count;
    if (stored.setAside) this.#ops.notice('host.store-set-aside', stored.setAside);
  }

  #failed(e) {
    this.stats.failures += 1;
    this.#pausedUntil = Date.now() + this.#options.retryMs;
    this.#ops.notice('host.store-unavailable', `${e?.message ?? e}; decisions go on from memory, the store is tried again in ${this.#options.retryMs} ms`);
  }
}
