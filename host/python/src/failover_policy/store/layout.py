"""What the two stores share: their options, what a load and a read give the per-process logic
(`sync`), the guest operations they fold with, and the TTL rule. The layout itself is
tests/fleet/README.md, the same in every host."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..types import Folded

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
    def changes(self, since: str, now: str) -> str | None: ...
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
    readable), where the log was read up to, how many entries it held past the base, and what
    was set aside."""
    state: str | None
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


def ttl_ms(state: str | None, now: int, forget_after_ms: int) -> int | None:
    """How long stored state must live: until the latest cooldown or open-circuit end in `state`,
    and at least `forget_after_ms`; None (no expiry) when nothing is ever forgotten."""
    if forget_after_ms == 0:
        return None
    ends = [0]
    try:
        parsed = json.loads(state) if state else {}
    except ValueError:
        parsed = {}
    for section, field in (("credentials", "cooldown_until_ms"), ("routes", "open_until_ms")):
        entries = parsed.get(section) if isinstance(parsed, dict) else None
        for entry in (entries or {}).values() if isinstance(entries, dict) else ():
            end = entry.get(field) if isinstance(entry, dict) else None
            if isinstance(end, int):
                ends.append(end)
    return max(max(ends) - now, forget_after_ms)


def base_unreadable(folded: Folded, has_base: bool) -> tuple[str | None, bool]:
    """(why the base, state 0 of a fold, is unreadable or None; whether it is of a newer schema)."""
    if has_base:
        for u in folded.unreadable:
            if u.index == 0:
                return u.message, u.newer
    return None, False
