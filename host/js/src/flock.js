// flock(2) on a file descriptor, the lock the Rust (`File::try_lock`) and Python (`fcntl.flock`)
// hosts take on `<path>.lock`. Node has no flock in core, and the npm lock packages at hand take
// other locks: `fs-native-extensions` and `os-lock` use fcntl record locks (OFD or POSIX), which
// on Linux neither block nor are blocked by flock, and `proper-lockfile` makes a lock directory
// no other host looks at. So libc's flock is called through koffi (a maintained FFI with
// prebuilt binaries in its npm packages, nothing compiled at install). Waits poll the
// non-blocking form, as the Python host does, so the event loop never blocks on a lock.
import koffi from 'koffi';
import { StoreError, StoreLocked } from './errors.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11; // EAGAIN on Linux
const EINTR = 4;
const POLL_MS = 2;

let flockFn;

function flock() {
  if (!flockFn) {
    const libc = koffi.load(process.platform === 'darwin' ? 'libc.dylib' : 'libc.so.6');
    flockFn = libc.func('int flock(int fd, int operation)');
  }
  return flockFn;
}

/** Takes the lock if it is free: true, or false when another process holds it. */
export function tryLock(fd, exclusive, where) {
  for (;;) {
    if (flock()(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
    const errno = koffi.errno();
    if (errno === EWOULDBLOCK) return false;
    if (errno !== EINTR) throw new StoreError(`cannot lock ${where}: flock failed with errno ${errno}`);
  }
}

function lockedError(where, waitedMs, exclusive) {
  return new StoreLocked(`${where} stayed locked ${exclusive ? '' : 'exclusively '}for ${Math.round(waitedMs)} ms (another process is folding the log)`);
}

/** Takes the lock within `timeoutMs` (async polling), or rejects with StoreLocked. */
export async function lock(fd, { exclusive, timeoutMs, where }) {
  const start = performance.now();
  while (!tryLock(fd, exclusive, where)) {
    const waited = performance.now() - start;
    if (waited >= timeoutMs) throw lockedError(where, waited, exclusive);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** `lock` for the 'exit' hook, where nothing asynchronous runs any more: the wait blocks. */
export function lockSync(fd, { exclusive, timeoutMs, where }) {
  const start = performance.now();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (!tryLock(fd, exclusive, where)) {
    const waited = performance.now() - start;
    if (waited >= timeoutMs) throw lockedError(where, waited, exclusive);
    Atomics.wait(pause, 0, 0, POLL_MS);
  }
}
