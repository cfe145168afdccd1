"""`fold` and `changes` for any contract version, and `fold` for any number of states.

A policy of contract 0.3.0 folds and diffs in the guest; one of 0.1/0.2 has only `merge`, so a
fold is a pairwise merge that forgets nothing and a change is the whole new snapshot, and neither
says how long a store must keep it (`keep_until_ms` 0: the store's `forget_after_ms` alone). A
fold over more than the payload limit runs in chunks, each folded into the result of the ones
before (merge is associative, so the result is the same).
"""

from __future__ import annotations

from collections.abc import Callable

from .types import Delta, Folded, UnreadableState

MergeRaw = Callable[[str, str], tuple[bool, str]]
"""`Instance.merge`: (True, merged) or (False, the guest's message naming `snapshot a` or `b`)."""
FoldRaw = Callable[[list[str]], "Folded | str"]
"""The guest's `fold` with `now` and `forget-after` bound: the result or the guest's message."""


def _renamed(message: str, index: int) -> str:
    """The guest's message about `snapshot a`/`snapshot b`, about `snapshot <index>` instead."""
    for name in ("snapshot a: ", "snapshot b: "):
        if message.startswith(name):
            return f"snapshot {index}: {message[len(name):]}"
    return f"snapshot {index}: {message}"


def fold_pairwise(merge: MergeRaw, states: list[str]) -> Folded:
    """What a 0.1/0.2 policy can do: merge the states one by one, setting unreadable ones apart."""
    acc: str | None = None
    unreadable: list[UnreadableState] = []
    for i, state in enumerate(states):
        # A first state is checked by merging it with itself.
        ok, out = merge(state if acc is None else acc, state)
        if ok:
            acc = out
        else:
            unreadable.append(UnreadableState(i, _renamed(out, i), "is newer than" in out))
    return Folded(acc, 0, unreadable, 0)


def fold_chunked(fold: FoldRaw, states: list[str], limit: int) -> Folded | str:
    """`fold` over `states` in chunks of at most `limit` bytes (one state per chunk at least), each
    with the result so far; indices of unreadable states are those in `states`."""
    acc: str | None = None
    unreadable: list[UnreadableState] = []
    forgotten = keep_until_ms = 0
    i = 0
    while True:
        chunk = [] if acc is None else [acc]
        start, size = i, 0 if acc is None else len(acc.encode())
        while i < len(states):
            n = len(states[i].encode())
            if i > start and size + n > limit:
                break
            chunk.append(states[i])
            size += n
            i += 1
        result = fold(chunk)
        if isinstance(result, str):
            return result
        shift = start - (0 if acc is None else 1)
        unreadable += [_shifted(u, shift) for u in result.unreadable]
        forgotten += result.forgotten
        if result.state is not None:
            # Each chunk's fold holds the result so far, so the last one's end is the whole fold's.
            acc, keep_until_ms = result.state, result.keep_until_ms
        if i >= len(states):
            return Folded(acc, keep_until_ms, unreadable, forgotten)


def _shifted(u: UnreadableState, shift: int) -> UnreadableState:
    prefix = f"snapshot {u.index}: "
    message = f"snapshot {u.index + shift}: {u.message[len(prefix):]}" if u.message.startswith(prefix) else u.message
    return UnreadableState(u.index + shift, message, u.newer)


def changes_whole(since: str, now: str) -> Delta | None:
    """What a 0.1/0.2 policy can do: the whole of `now` when it is not `since` (and no end to keep
    it until: it cannot say one)."""
    return None if since == now else Delta(now, 0)
