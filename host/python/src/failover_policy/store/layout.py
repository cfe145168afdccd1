"""What the two stores share: their options, what a load and a read give the per-process logic
(`sync`), the guest operations they fold and diff with, and the TTL rule (from the guest's
`keep_until_ms`: no host reads a snapshot). The layout itself is tests/fleet/README.md, the same
in every host."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..types import Delta, Folded

WEEK_MS = 7 * 24 * 3600 * 1000
ASIDE_TTL_MS = WEEK_MS
"""How long a corrupt value is kept aside in Redis for someone to look at."""


@dataclass(frozen=True)
class Options:
    """How a process shares state through a store (the same names in every host).

    `refresh_ms`: at most this often, at a call's start, the process reads what peers appended.
    `retry_ms`: after a store operation fails, the store is left alone this long (decisions go
    on from memory; what is owed is saved after). `fold_after`: past this many log entries (or
    256 KiB of file log) a process folds the log into the base. `forget_after_ms`: records of
    credentials and routes with no sign of life for this long are dropped at a fold (0: never).
    """

    refresh_ms: int = 250
    retry_ms: int = 5000
    fold_after: int = 256
    forget_after_ms: int = WEEK_MS

    def __post_init__(self) -> None:
        for name in ("refresh_ms", "retry_ms", "fold_after", "forget_after_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"store option {name} must be a non-negative integer, got {value!r}")


class Guest(Protocol):
    """The policy's operations a store folds and diffs with (`Policy` supplies them)."""

    def fold(self, states: list[str], forget_after_ms: int) -> Folded: ...
    def changes(self, since: str, now: str) -> Delta | None: ...
    def merge(self, a: str, b: str) -> str: ...


@dataclass(frozen=True)
class SetAside:
    """A stored state the policy could not read, kept aside so nothing is lost: `path` is where it
    was (a file, a Redis key), `aside` where it is now, `why` the policy's message."""
    path: str
    aside: str
    why: str


@dataclass(frozen=True)
class Loaded:
    """A whole read: the base and the log folded (`state`, None when the store holds nothing
    readable), the latest cooldown or open-circuit end in it (`keep_until_ms`, the guest's), where
    the log was read up to, how many entries it held past the base, and what was set aside."""
    state: str | None
    keep_until_ms: int
    position: Any
    entries: int
    set_aside: tuple[SetAside, ...] = ()


@dataclass(frozen=True)
class Read:
    """A refresh: the entries appended past `position`, and the position after them. `reload`:
    the log was folded or replaced past what we read, so only a whole load is complete."""
    entries: list[str]
    position: Any
    reload: bool = False


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ttl_ms(keep_until_ms: int, now_ms: int, forget_after_ms: int) -> int | None:
    """How long a stored key lives (tests/fleet/README.md, "TTL of every key"): until
    `keep_until_ms`, the latest cooldown or open-circuit end the guest reported for it (a delta's
    or a fold's), and at least `forget_after_ms`, so a key a week quiet is gone but a 30-day quota
    cooldown is not forgotten by the store before the policy would; None (no expiry at all) when
    `forget_after_ms` is 0, as the policy then forgets nothing either."""
    if forget_after_ms == 0:
        return None
    return max(keep_until_ms - now_ms, forget_after_ms)


def base_unreadable(folded: Folded, has_base: bool) -> tuple[str | None, bool]:
    """(why the base, state 0 of a fold, is unreadable or None; whether it is of a newer schema)."""
    if has_base:
        for u in folded.unreadable:
            if u.index == 0:
                return u.message, u.newer
    return None, False
