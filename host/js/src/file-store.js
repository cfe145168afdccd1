// The file store of tests/fleet/README.md ("File"): a base snapshot at `<path>`, one delta per
// line in `<path>.log`, and `<path>.lock`, held shared by appends and loads and exclusive by a
// fold, with flock, so processes of every host share it. The store only moves text: folding and
// merging are the guest's (the `fold` callbacks come from store-sync.js).
import {
  closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync, writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { lock, lockSync, tryLock } from './flock.js';
import { StoreError, StoreRefused } from './errors.js';
import { fleetOptions } from './store-options.js';

const NEWLINE = 0x0a;
/** A log past this many bytes is folded even below `foldAfter` lines (the spec's bound). */
const FOLD_BYTES = 256 * 1024;

export class FileStore {
  #path;
  #lockTimeoutMs;
  /** The log's size as last read, for the fold bound. */
  #logBytes = 0;
  fleet;

  /**
   * `path`: the base snapshot's file. Options: `lockTimeoutMs` (the longest wait for the lock,
   * 250 ms) and the fleet options of store-options.js.
   */
  /**
   * @param {string} path
   * @param {import('./index.js').FileStoreOptions} [options]
   */
  constructor(path, { lockTimeoutMs = 250, ...fleet } = {}) {
    if (typeof path !== 'string' || path === '') throw new TypeError('the file store needs a path (a non-empty string)');
    if (!(Number.isFinite(lockTimeoutMs) && lockTimeoutMs >= 0)) throw new TypeError(`lockTimeoutMs must be a number >= 0, not ${lockTimeoutMs}`);
    this.#path = path;
    this.#lockTimeoutMs = lockTimeoutMs;
    this.fleet = fleetOptions(fleet, ['lockTimeoutMs']);
  }

  /** What error messages call this store. */
  get where() {
    return `state store ${this.#path}`;
  }

  /** Base and log under the shared lock, folded: `{state, last, count, setAside}`. */
  async load(fold) {
    const lockFd = this.#openLock();
    try {
      await lock(lockFd, { exclusive: false, timeoutMs: this.#lockTimeoutMs, where: this.where });
      return this.#read(fold);
    } finally {
      closeSync(lockFd); // closing releases the lock
    }
  }

  /**
   * What peers appended since `last` (`{ino, offset}`), synchronously: one fstat when nothing
   * is new. A new inode or a shorter log means a fold replaced it: everything is read again.
   */
  poll(last, fold) {
    let fd;
    try {
      fd = openSync(`${this.#path}.log`, 'r');
    } catch (e) {
      if (e.code !== 'ENOENT') throw this.#error('cannot open the log', e);
      return last?.ino ? this.#reload(fold, last) : { state: undefined, last, count: 0 };
    }
    try {
      const st = fstatSync(fd);
      if (!last || st.ino !== last.ino || st.size < last.offset) return this.#reload(fold, last);
      this.#logBytes = st.size;
      if (st.size === last.offset) return { state: undefined, last, count: 0 };
      const { lines, end } = completeLines(readRange(fd, last.offset, st.size));
      const state = lines.length > 0 ? fold(lines).state : undefined;
      return { state, last: { ino: st.ino, offset: last.offset + end }, count: lines.length };
    } finally {
      closeSync(fd);
    }
  }

  /** A reload while serving a call: never waits for a fold in progress, the next refresh retries. */
  #reload(fold, last) {
    const lockFd = this.#openLock();
    try {
      if (!tryLock(lockFd, false, this.where)) return { state: undefined, last, count: 0, more: true };
      return { ...this.#read(fold), reloaded: true };
    } finally {
      closeSync(lockFd);
    }
  }

  /**
   * One line, `changes`' `delta.state`, appended under the shared lock. Files never expire, so
   * `delta.keepUntilMs` has no use here: a fold forgets what is idle.
   */
  async append(delta) {
    const lockFd = this.#openLock();
    try {
      await lock(lockFd, { exclusive: false, timeoutMs: this.#lockTimeoutMs, where: this.where });
      this.#write(delta.state);
    } finally {
      closeSync(lockFd);
    }
  }

  /** `append` for the 'exit' hook: the lock wait blocks (bounded by the lock timeout). */
  appendSync(delta) {
    const lockFd = this.#openLock();
    try {
      lockSync(lockFd, { exclusive: false, timeoutMs: this.#lockTimeoutMs, where: this.where });
      this.#write(delta.state);
    } finally {
      closeSync(lockFd);
    }
  }

  shouldFold(seen, foldAfter) {
    return seen > foldAfter || this.#logBytes > FOLD_BYTES;
  }

  /**
   * Base + log folded into a new base and an empty log, under the exclusive lock; false when
   * another process holds the lock (it is folding, or appending: a later fold gets it) or the
   * log holds a newer policy's entries (that policy folds).
   */
  async fold(fold) {
    const lockFd = this.#openLock();
    try {
      if (!tryLock(lockFd, true, this.where)) return false;
      const base = this.#readBase();
      const { lines, torn } = this.#readLog();
      const states = base === undefined ? lines : [base, ...lines];
      const r = fold(states);
      const first = base === undefined ? 0 : 1;
      if (r.unreadable.some((u) => u.newer)) return false;
      const stamp = Date.now();
      const corrupt = r.unreadable.filter((u) => u.index >= first).map((u) => states[u.index]);
      if (torn) corrupt.push(torn);
      if (corrupt.length > 0) writeFileSync(`${this.#path}.log.corrupt-${stamp}`, `${corrupt.join('\n')}\n`);
      if (base !== undefined && r.unreadable.some((u) => u.index === 0)) renameSync(this.#path, `${this.#path}.corrupt-${stamp}`);
      if (r.state !== undefined) this.#replace(this.#path, r.state);
      // An empty log under a new inode: every reader sees the replacement at its next fstat.
      this.#replace(`${this.#path}.log`, '');
      this.#logBytes = 0;
      return true;
    } finally {
      closeSync(lockFd);
    }
  }

  async close() {}

  /** Base and log (the caller holds the lock), folded; a base this policy cannot read is set aside. */
  #read(fold) {
    const base = this.#readBase();
    const { lines, ino, offset } = this.#readLog();
    const r = fold(base === undefined ? lines : [base, ...lines]);
    let setAside;
    const bad = base === undefined ? undefined : r.unreadable.find((u) => u.index === 0);
    if (bad?.newer) {
      throw new StoreRefused(`${this.where} holds state this policy cannot read (${bad.message}); it is left untouched`);
    }
    if (bad) {
      const aside = `${this.#path}.corrupt-${Date.now()}`;
      renameSync(this.#path, aside);
      setAside = `${this.where}: the base state could not be read (${bad.message}); it was moved to ${aside}`;
    }
    return { state: r.state, last: { ino, offset }, count: lines.length, setAside };
  }

  #readBase() {
    try {
      // Invalid UTF-8 reaches the policy as text it refuses, and is set aside.
      return readFileSync(this.#path).toString('utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return undefined;
      throw this.#error('cannot read the base state', e);
    }
  }

  /** The log's complete lines, its inode and the offset after its last newline; `torn`: a tail without one. */
  #readLog() {
    let fd;
    try {
      fd = openSync(`${this.#path}.log`, 'r');
    } catch (e) {
      if (e.code === 'ENOENT') return { lines: [], ino: 0, offset: 0, torn: undefined };
      throw this.#error('cannot read the log', e);
    }
    try {
      const st = fstatSync(fd);
      const bytes = readRange(fd, 0, st.size);
      const { lines, end } = completeLines(bytes);
      this.#logBytes = st.size;
      const tail = bytes.subarray(end).toString('utf8');
      return { lines, ino: st.ino, offset: end, torn: tail === '' ? undefined : tail };
    } finally {
      closeSync(fd);
    }
  }

  #write(delta) {
    // The guest writes compact JSON; a newline inside would split one entry into two bad lines.
    const line = Buffer.from(`${delta.includes('\n') ? JSON.stringify(JSON.parse(delta)) : delta}\n`);
    const fd = openSync(`${this.#path}.log`, 'a');
    try {
      // One write(2) of the whole line with O_APPEND: lines of concurrent appenders never interleave.
      let done = 0;
      while (done < line.length) done += writeSync(fd, line, done);
    } catch (e) {
      throw this.#error('cannot append to the log', e);
    } finally {
      closeSync(fd);
    }
  }

  /** Writes `text` to a temporary file, fsyncs and renames it over `target` (a reader sees old or new). */
  #replace(target, text) {
    const tmp = `${target}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    const dir = openSync(dirname(target), 'r');
    try {
      fsyncSync(dir); // the rename is durable once the directory is
    } finally {
      closeSync(dir);
    }
  }

  #openLock() {
    try {
      mkdirSync(dirname(this.#path), { recursive: true });
      return openSync(`${this.#path}.lock`, 'a+');
    } catch (e) {
      throw this.#error('cannot open the lock file', e);
    }
  }

  #error(what, e) {
    return new StoreError(`${this.where}: ${what}: ${e.message}`, e);
  }
}

function readRange(fd, from, to) {
  const buf = Buffer.alloc(to - from);
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, from + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

/** The lines of `bytes` that end with a newline (empty ones skipped) and the offset after the last. */
function completeLines(bytes) {
  const end = bytes.lastIndexOf(NEWLINE) + 1;
  const lines = bytes.subarray(0, end).toString('utf8').split('\n').filter((l) => l.trim() !== '');
  return { lines, end };
}
