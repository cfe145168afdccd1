"""`FileStore`: the fleet layout of tests/fleet/README.md on one machine's filesystem.

`<path>` is the base snapshot, `<path>.log` one delta per `\\n`-terminated line, `<path>.lock`
the lock: appends and loads hold it shared (so they never wait on each other), a fold holds it
exclusive and replaces the base and then the log by rename (a new inode tells readers to load
again). A refresh takes no lock: it reads complete lines past its offset through one descriptor.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..types import Delta
from .errors import StoreLocked, StoreRefused, StoreUnavailable
from .layout import Guest, Loaded, Options, Read, SetAside, base_unreadable, now_ms

FOLD_BYTES = 256 << 10
"""A log this long is folded whatever its line count."""


@dataclass(frozen=True)
class Position:
    """Where the log was read up to: its inode (None: there was no log) and the offset after the
    last complete line."""
    inode: int | None
    offset: int


class FileStore:
    """One policy's shared state in files next to `path` (see the module docstring).

    `lock_timeout_ms` bounds the wait for the lock (a fold holds it exclusive); the other options
    are `layout.Options`'.
    """

    def __init__(self, path: str | Path, *, lock_timeout_ms: int = 250, refresh_ms: int = 250, retry_ms: int = 5000,
                 fold_after: int = 256, forget_after_ms: int = Options.forget_after_ms) -> None:
        self.path = Path(path)
        self.options = Options(refresh_ms, retry_ms, fold_after, forget_after_ms)
        if not isinstance(lock_timeout_ms, int) or lock_timeout_ms < 0:
            raise ValueError(f"store option lock_timeout_ms must be a non-negative integer, got {lock_timeout_ms!r}")
        self.lock_timeout_ms = lock_timeout_ms
        self.log = self._sibling(".log")
        self.where = str(self.path)

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"

    # ---- the four operations of the layout ----

    def load(self, guest: Guest) -> Loaded:
        """Base and log folded, under the shared lock. A base the policy cannot read is set aside;
        one of a newer schema raises StoreRefused and is left untouched."""
        with self._locked(fcntl.LOCK_SH):
            base = self._read_base()
            position, lines = Position(None, 0), []
            try:
                with open(self.log, "rb") as f:
                    data = f.read()
                    cut = data.rfind(b"\n") + 1
                    position = Position(os.fstat(f.fileno()).st_ino, cut)
                    lines = _lines(data[:cut])
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreUnavailable(f"state store {self.log}: {exc}") from exc
            states = ([] if base is None else [base]) + lines
            folded = guest.fold(states, 0)
            why, newer = base_unreadable(folded, base is not None)
            if newer:
                raise StoreRefused(f"state store {self.path} holds state this policy cannot read: {why}")
            aside: tuple[SetAside, ...] = ()
            if why is not None:
                aside = (self._set_base_aside(why),)
            return Loaded(folded.state, folded.keep_until_ms, position, len(lines), aside)

    def append(self, delta: Delta) -> None:
        """One line at the log's end, under the shared lock (bounded: StoreLocked). Files have no
        TTL: `delta.keep_until_ms` is for Redis; a fold forgets what is no longer needed here."""
        line = delta.state.replace("\n", " ").encode() + b"\n"
        with self._locked(fcntl.LOCK_SH):
            try:
                fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    # One write: O_APPEND places the whole line at the end, never interleaved.
                    written = os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StoreUnavailable(f"state store {self.log}: cannot append: {exc}") from exc
            if written != len(line):
                raise StoreUnavailable(f"state store {self.log}: wrote {written} of {len(line)} bytes")

    def read(self, position: Position) -> Read:
        """The complete lines appended past `position`; `reload` when the log was replaced (a fold)
        or cut short."""
        try:
            fd = os.open(self.log, os.O_RDONLY)
        except FileNotFoundError:
            return Read([], position, reload=position.inode is not None)
        except OSError as exc:
            raise StoreUnavailable(f"state store {self.log}: {exc}") from exc
        try:
            st = os.fstat(fd)
            # A log we have not seen (none at our load), another inode (a fold) or a shorter one:
            # entries may have been folded into a base we never read.
            if position.inode != st.st_ino or st.st_size < position.offset:
                return Read([], position, reload=True)
            if st.st_size == position.offset:
                return Read([], position)
            data = os.pread(fd, st.st_size - position.offset, position.offset)
        except OSError as exc:
            raise StoreUnavailable(f"state store {self.log}: {exc}") from exc
        finally:
            os.close(fd)
        cut = data.rfind(b"\n") + 1  # a tail without its newline is still being written
        return Read(_lines(data[:cut]), Position(st.st_ino, position.offset + cut))

    def fold_due(self, entries: int, position: Position) -> bool:
        """Past `fold_after` entries seen, or a log past 256 KiB: its size now, not only as far as
        we read it, so a process that only appends (large deltas) folds too."""
        if entries > self.options.fold_after or position.offset > FOLD_BYTES:
            return True
        try:
            return os.stat(self.log).st_size > FOLD_BYTES
        except OSError:
            return False  # no log (yet, or just folded away): nothing to fold

    def fold(self, guest: Guest) -> bool:
        """Base and log folded into a new base (forgetting what `forget_after_ms` says) and an
        empty log; False when skipped (another process holds the lock, or a newer policy wrote
        some of it and will fold it itself)."""
        try:
            lock = self._locked(fcntl.LOCK_EX, wait=False)
            lock.__enter__()
        except StoreLocked:
            return False
        try:
            base = self._read_base()
            try:
                data = self.log.read_bytes()
            except FileNotFoundError:
                data = b""
            lines = _lines(data if data.endswith(b"\n") or not data else data + b"\n")
            states = ([] if base is None else [base]) + lines
            folded = guest.fold(states, self.options.forget_after_ms)
            if any(u.newer for u in folded.unreadable):
                return False
            why, _ = base_unreadable(folded, base is not None)
            if why is not None:
                self._set_base_aside(why)
            first = 0 if base is None else 1
            bad = [lines[u.index - first] for u in folded.unreadable if u.index >= first]
            if bad:
                aside = self._sibling(f".log.corrupt-{now_ms()}")
                aside.write_text("".join(line + "\n" for line in bad))
            if folded.state is not None:
                self._replace(self.path, folded.state.encode())
            self._replace(self.log, b"")
            return True
        except OSError as exc:
            raise StoreUnavailable(f"state store {self.path}: cannot fold: {exc}") from exc
        finally:
            lock.__exit__()

    # ---- files ----

    def _read_base(self) -> str | None:
        try:
            # Invalid UTF-8 reaches the policy as text it refuses, and is set aside.
            return self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"state store {self.path}: {exc}") from exc

    def _set_base_aside(self, why: str) -> SetAside:
        aside = self._sibling(f".corrupt-{now_ms()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            pass  # another loader set it aside first
        return SetAside(str(self.path), str(aside), why)

    def _replace(self, target: Path, data: bytes) -> None:
        """`target` holds `data`, written to a temporary file, fsynced and renamed over it."""
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename is durable once the directory is
        finally:
            os.close(dir_fd)

    def _locked(self, kind: int, wait: bool = True) -> _FileLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"state store {self.path}: {exc}") from exc
        return _FileLock(self._sibling(".lock"), kind, self.lock_timeout_ms / 1000 if wait else 0.0, str(self.path))

    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)


def _lines(data: bytes) -> list[str]:
    return [line.decode("utf-8", errors="replace") for line in data.split(b"\n") if line.strip()]


class _FileLock:
    """`flock` of `kind` on `path`, waited for at most `timeout` seconds (StoreLocked after)."""

    def __init__(self, path: Path, kind: int, timeout: float, where: str) -> None:
        self._path, self._kind, self._timeout, self._where = path, kind, timeout, where
        self._fd = -1

    def __enter__(self) -> None:
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnavailable(f"state store {self._where}: cannot open its lock {self._path}: {exc}") from exc
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(self._fd, self._kind | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= self._timeout:
                    os.close(self._fd)
                    raise StoreLocked(f"state store {self._where} stayed locked for {waited * 1000:.0f} ms "
                                      "(a fold under way)") from None
                time.sleep(0.002)

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)  # closing releases the lock
