"""Where a policy's state outlives the process and is shared by a fleet.

A store only moves snapshots: every write merges through the component's `merge` (pass
`policy.merge`), so the merge rules live in the guest and every host joins state identically.
`FileStore` is the embedded default; `RedisStore` serves a fleet across machines. Every
operation is bounded (a lock timeout, socket timeouts): a store that is slow or down costs a
call at most that bound, and the next save catches up.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ConfigError, PolicyError

Merge = Callable[[str, str], str]
"""`Policy.merge`: two snapshots merged by the component; raises ConfigError."""


class StoreError(PolicyError):
    """The state store could not be read or written; the policy goes on from its own state."""


class StoreLocked(StoreError):
    """Another process held the file lock longer than the bound: this write is skipped."""


class StoreRefused(StoreError):
    """The stored state is of a newer schema than this policy: it is left untouched."""


class StoreUnavailable(StoreError):
    """The store cannot be reached in time (Redis down, a timeout)."""


class StoreContended(StoreError):
    """Other writers changed the Redis key on every attempt: this write is skipped."""


@dataclass(frozen=True)
class SetAside:
    """A corrupt or truncated stored state, kept aside so nothing is lost (for Redis, key names)."""
    path: str
    aside: str
    why: str


@dataclass(frozen=True)
class Stored:
    """What a load or save found: the state now in the store, and what was set aside, if any."""
    state: str | None
    set_aside: SetAside | None = None


def _join(merge: Merge, current: str, ours: str, where: str) -> tuple[str | None, str | None]:
    """`merge(current, ours)` as (merged, None), or (None, why) when `current` is unreadable."""
    try:
        return merge(current, ours), None
    except ConfigError as exc:
        if exc.message.startswith("snapshot a") and "is newer than" in exc.message:
            raise StoreRefused(f"state store {where} holds state this policy cannot read: {exc.message}") from exc
        if exc.message.startswith("snapshot a"):
            return None, exc.message
        raise StoreError(f"cannot merge our state: {exc.message}") from exc


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class FileStore:
    """One JSON file per policy: read-merge-write under `fcntl.flock` on `<file>.lock`, written
    to a temporary file, fsynced and renamed, so a reader sees the old state or the new one."""

    def __init__(self, path: str | Path, lock_timeout: float = 0.25) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    def load(self, merge: Merge) -> Stored:
        """The stored state, checked by the component (a corrupt file is set aside, reads as none)."""
        with self._locked():
            current = self._read()
            return Stored(None) if current is None else self._join(merge, current, current)

    def save(self, merge: Merge, ours: str) -> Stored:
        """Merges `ours` into the stored state and writes the result; returns what is now stored."""
        with self._locked():
            current = self._read()
            stored = Stored(None) if current is None else self._join(merge, current, ours)
            # Nothing stored, or nothing recoverable: ours is the whole state.
            merged = stored.state if stored.state is not None else ours
            self._write(merged)
            return Stored(merged, stored.set_aside)

    def _join(self, merge: Merge, current: str, ours: str) -> Stored:
        merged, why = _join(merge, current, ours, str(self.path))
        if why is None:
            return Stored(merged)
        aside = self._sibling(f".corrupt-{_now_ms()}")
        os.replace(self.path, aside)
        return Stored(None, SetAside(str(self.path), str(aside), why))

    def _locked(self) -> _FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return _FileLock(self._sibling(".lock"), self.lock_timeout, str(self.path))

    def _read(self) -> str | None:
        try:
            # Invalid UTF-8 reaches the component as text it refuses, and is set aside.
            return self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None

    def _write(self, state: str) -> None:
        tmp = self._sibling(f".tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(state.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        # The rename is durable once the directory is.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)


class _FileLock:
    def __init__(self, path: Path, timeout: float, where: str) -> None:
        self._path, self._timeout, self._where = path, timeout, where
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= self._timeout:
                    os.close(self._fd)
                    raise StoreLocked(f"state store {self._where} stayed locked for {waited * 1000:.0f} ms: "
                                      "this write is skipped") from None
                time.sleep(0.002)

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)  # closing releases the lock


MIN_TTL_MS = 24 * 3600 * 1000
"""The shortest TTL: state that holds no cooldown still outlives a quiet night."""
ASIDE_TTL_MS = 7 * 24 * 3600 * 1000
"""How long a corrupt value is kept aside for someone to look at."""


def ttl_ms(state: str, now_ms: int) -> int:
    """Until the latest cooldown or open-circuit end in `state`, at least a day."""
    try:
        parsed = json.loads(state)
    except ValueError:
        return MIN_TTL_MS
    ends = [0]
    for section, field in (("credentials", "cooldown_until_ms"), ("routes", "open_until_ms")):
        entries = parsed.get(section) if isinstance(parsed, dict) else None
        for entry in (entries or {}).values() if isinstance(entries, dict) else ():
            end = entry.get(field) if isinstance(entry, dict) else None
            if isinstance(end, int):
                ends.append(end)
    return max(max(ends) - now_ms, MIN_TTL_MS)


class RedisStore:
    """One key per policy (`failover-policy:<name>`), updated with optimistic WATCH/MULTI
    (bounded retries), with a TTL no shorter than the longest cooldown it holds."""

    def __init__(self, url: str, policy_name: str, timeout: float = 0.2, attempts: int = 16) -> None:
        # No client-side retries: one bounded try, and the next save catches up.
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                            retry=Retry(NoBackoff(), 0))
        self.key = f"failover-policy:{policy_name}"
        self._where = f"{url} {self.key}"
        self._attempts = attempts

    def load(self, merge: Merge) -> Stored:
        """The stored state, checked by the component (a corrupt value is set aside, reads as none)."""
        return self._update(merge, None)

    def save(self, merge: Merge, ours: str) -> Stored:
        """Merges `ours` into the stored state and writes the result; returns what is now stored."""
        return self._update(merge, ours)

    def _update(self, merge: Merge, ours: str | None) -> Stored:
        try:
            with self._client.pipeline() as pipe:
                for _ in range(self._attempts):
                    try:
                        return self._attempt(pipe, merge, ours)
                    except redis.WatchError:
                        continue  # another writer came between WATCH and EXEC: merge again
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"state store {self._where} is unavailable: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"state store {self._where}: {exc}") from exc
        raise StoreContended(f"state store {self._where} changed under us {self._attempts} times: "
                             "this write is skipped")

    def _attempt(self, pipe: redis.client.Pipeline, merge: Merge, ours: str | None) -> Stored:
        pipe.watch(self.key)
        raw = pipe.get(self.key)
        current = None if raw is None else raw.decode("utf-8", errors="replace")
        merged, why = (ours, None) if current is None else _join(merge, current, current if ours is None else ours,
                                                                 self._where)
        if why is not None:
            merged = ours
        if ours is None and why is None:
            pipe.unwatch()
            return Stored(merged)
        aside = f"{self.key}:corrupt-{_now_ms()}"
        pipe.multi()
        if why is not None:
            pipe.set(aside, raw, px=ASIDE_TTL_MS)
        if merged is None:
            pipe.delete(self.key)
        else:
            pipe.set(self.key, merged, px=ttl_ms(merged, _now_ms()))
        pipe.execute()
        return Stored(merged, None if why is None else SetAside(self.key, aside, why))
