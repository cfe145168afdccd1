"""One process's side of a shared store, the same for `FileStore` and `RedisStore`: what it knows
the store holds, where it read the log up to, what it owes, when it next looks, and the pause
after a failure.

- `known` advances only after an append succeeds, so a delta that could not be appended stays in
  the next one (`changes(known, snapshot)`): nothing is skipped "for the next save".
- A refresh is paced (`refresh_ms`) and reads only what was appended past `position`.
- After a store operation fails as unavailable, every store operation waits `retry_ms`: a down
  store costs a call its timeout once, not on every call; decisions go on from memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import PolicyError
from ..types import Delta
from .errors import StoreError, StoreLocked, StoreUnavailable
from .file_log import FileStore
from .layout import Guest, Loaded
from .redis_log import RedisStore

log = logging.getLogger("failover_policy")
Store = FileStore | RedisStore


@dataclass
class Stats:
    """What this process did with the store (the fleet benchmark prints it)."""
    saves: int = 0
    save_ms: list[float] = field(default_factory=list)
    refreshes: int = 0
    folds: int = 0
    failures: int = 0  # store operations that failed (each pauses the store for `retry_ms`)


class StoreSync:
    """The per-process state of one store (see the module docstring). Not thread-safe: the
    policy's lock serialises every call."""

    def __init__(self, store: Store, clock: Any = time.monotonic) -> None:
        self.store = store
        self.options = store.options
        self._clock = clock
        self.known: str | None = None
        self.position: Any = None
        self.loaded = False
        self.owed = False
        self.entries = 0  # log entries past the base seen since the last load: when to fold
        self.error: PolicyError | None = None
        self.stats = Stats()
        self.latest: str | None = None  # the last snapshot handed to `save`
        # The latest cooldown or open-circuit end the guest reported in any state this process
        # loaded, read or appended: the TTL of a whole-state flush at exit, when no guest is left
        # to ask (never read from a snapshot: the guest is the only one that reads them).
        self.keep_until_ms = 0
        self._paused_until = 0.0
        self._next_refresh = 0.0

    # ---- load and refresh: what peers stored, to take in ----

    def load(self, guest: Guest) -> str | None:
        """The stored state at start (None when there is none or the store failed: then `error`
        says why and the load is tried again at a refresh after `retry_ms`)."""
        loaded = self._try(lambda: self.store.load(guest))
        if loaded is None:
            self._next_refresh = self._clock() + self.options.retry_ms / 1000  # a refused base: not every call
            return None
        self._loaded(loaded, guest)
        return loaded.state

    def _loaded(self, loaded: Loaded, guest: Guest) -> None:
        for aside in loaded.set_aside:
            log.warning("stored policy state %s could not be read and was set aside as %s: %s",
                        aside.path, aside.aside, aside.why)
        if loaded.state is not None:
            self.known = loaded.state if self.known is None else guest.merge(self.known, loaded.state)
        self.keep_until_ms = max(self.keep_until_ms, loaded.keep_until_ms)
        self.position, self.entries, self.loaded = loaded.position, loaded.entries, True

    def refresh(self, guest: Guest, live: bool) -> str | None:
        """At a call's start, at most every `refresh_ms`: what peers appended since the last look,
        folded into one state to take in (None: nothing new, not due, or the store failed). A
        store not loaded yet is loaded. `live` False (a 0.1/0.2 policy): loads only."""
        now = self._clock()
        if now < self._next_refresh or now < self._paused_until or (self.loaded and not live):
            return None
        self._next_refresh = now + self.options.refresh_ms / 1000
        if not self.loaded:
            return self.load(guest)
        return self._try(lambda: self._read(guest))

    def _read(self, guest: Guest) -> str | None:
        read = self.store.read(self.position)
        self.stats.refreshes += 1
        if read.reload:
            return self.load(guest)
        self.position = read.position
        if not read.entries:
            return None
        self.entries += len(read.entries)
        folded = guest.fold(read.entries, 0)
        state = folded.state
        if state is not None:
            self.known = state if self.known is None else guest.merge(self.known, state)
            self.keep_until_ms = max(self.keep_until_ms, folded.keep_until_ms)
        self._fold_if_due(guest)
        return state

    # ---- save and flush: what this process learned, appended ----

    def save(self, guest: Guest, snapshot: str) -> None:
        """After a state change (or while a save is owed): append what `snapshot` knows that the
        store does not. A failure leaves it owed; during the pause after one nothing is tried."""
        self.latest = snapshot
        self.owed = True
        if self._clock() < self._paused_until:
            return
        self._append(guest, snapshot)

    def flush(self, guest: Guest, snapshot: str, wait_s: float) -> bool:
        """What is owed, appended with retries for up to `wait_s` (close and exit); True when
        nothing is owed any more."""
        self.latest = snapshot
        deadline = self._clock() + wait_s
        while True:
            self.owed = True
            self._append(guest, snapshot)
            if not self.owed or self._clock() >= deadline:
                return not self.owed
            time.sleep(min(0.05, max(0.0, deadline - self._clock())))

    def flush_whole(self) -> None:
        """For a policy dropped without `close()` (no guest left to diff with): the last snapshot
        appended whole if anything is owed, once (merge is idempotent, so whole is as good). Its
        TTL end is the latest the guest reported to this process: a cooldown recorded since, while
        the store was paused, that ends past `forget_after_ms` is not in it (only here)."""
        if self.owed and self.latest is not None:
            try:
                self.store.append(Delta(self.latest, self.keep_until_ms))
                self.owed = False
            except StoreError as exc:
                log.warning("policy state owed to %s not saved at exit: %s", self.store.where, exc)

    def _append(self, guest: Guest, snapshot: str) -> None:
        def append() -> bool:
            # Nothing known to be stored (an empty store, or one that could not be loaded): the
            # guest's delta from nothing ("" for `since`), which leaves out records that say nothing.
            delta = guest.changes(self.known or "", snapshot)
            if delta is None:
                return False
            began = time.perf_counter()
            self.store.append(delta)
            self.stats.save_ms.append((time.perf_counter() - began) * 1000)
            self.stats.saves += 1
            self.keep_until_ms = max(self.keep_until_ms, delta.keep_until_ms)
            self.known = delta.state if self.known is None else guest.merge(self.known, delta.state)
            # Our own entries count towards a fold too: a process that only writes folds as well
            # (read back at a refresh they count again; folding a little early costs nothing).
            self.entries += 1
            return True
        if self._try(append) is not None:
            self.owed = False
            self._fold_if_due(guest)

    def _fold_if_due(self, guest: Guest) -> None:
        """Folding is optional work: losing the race or failing skips it and loses nothing."""
        if not self.loaded or not self.store.fold_due(self.entries, self.position):
            return
        self.entries = 0  # whoever folded, the next refresh sees it and loads again
        if self._try(lambda: self.store.fold(guest)):
            self.stats.folds += 1

    def _try(self, op: Any) -> Any:
        """`op()`, or None with `error` set when the store (or the policy) failed; an unavailable
        store pauses every store operation for `retry_ms`."""
        try:
            result = op()
        except StoreUnavailable as exc:
            self._paused_until = self._clock() + self.options.retry_ms / 1000
            self._failed(exc, f"the store is left alone for {self.options.retry_ms} ms")
            return None
        except StoreLocked as exc:
            self._failed(exc, "the next save or call tries again")
            return None
        except PolicyError as exc:
            self._failed(exc, "the next save or call tries again")
            return None
        self.error = None
        return result

    def _failed(self, exc: PolicyError, then: str) -> None:
        self.stats.failures += 1
        if self.error is None or type(self.error) is not type(exc):
            log.warning("policy state store: %s; decisions go on from memory, %s", exc, then)
        self.error = exc
