"""`RedisStore`: the fleet layout of tests/fleet/README.md on one Redis (or Valkey), for a fleet
across machines.

`P` (`failover-policy:<name>`) is the base snapshot, `P:log` a stream with one delta per save,
`P:folded` the id of the last entry folded into `P`. A save is one pipelined round trip (XADD and
PEXPIRE), a refresh another (GET P:folded, XREAD); only a fold reads and rewrites, under WATCH, and
losing that race skips it (the entries stay in the log). Every command is bounded by `timeout_ms`
(connect, TLS handshake and each read); the client never retries on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..types import Delta
from .errors import StoreError, StoreRefused, StoreUnavailable
from .layout import ASIDE_TTL_MS, Guest, Loaded, Options, Read, SetAside, base_unreadable, now_ms, ttl_ms

T = TypeVar("T")
READ_COUNT = 512
"""Entries per XREAD; a refresh reads on while a reply is full."""
ZERO = "0-0"


def _id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _next_id(text: str) -> str:
    ms, seq = _id(text)
    return f"{ms}-{seq + 1}"


def _text(raw: bytes | None) -> str | None:
    # Invalid UTF-8 reaches the policy as text it refuses, and is set aside.
    return None if raw is None else raw.decode("utf-8", errors="replace")


class RedisStore:
    """One policy's shared state on Redis (see the module docstring).

    `url`: `redis://[user:password@]host:port/db` or `rediss://...` for TLS (ACL user and password
    from the URL); `ca_file`: the PEM of the CA that signed the server's certificate (rediss://
    only; without it the system's CAs are trusted). `timeout_ms` bounds every command's read;
    `connect_timeout_ms` setting a connection up (TCP, TLS, AUTH), which on a busy machine takes
    longer than a command; the other options are `layout.Options`'.
    """

    def __init__(self, url: str, policy_name: str, *, timeout_ms: int = 200, connect_timeout_ms: int = 1000,
                 ca_file: str | None = None,
                 refresh_ms: int = 250, retry_ms: int = 5000, fold_after: int = 256,
                 forget_after_ms: int = Options.forget_after_ms) -> None:
        self.options = Options(refresh_ms, retry_ms, fold_after, forget_after_ms)
        for name, value in (("timeout_ms", timeout_ms), ("connect_timeout_ms", connect_timeout_ms)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"store option {name} must be a positive integer, got {value!r}")
        scheme = url.partition("://")[0]
        if scheme not in ("redis", "rediss"):
            raise ValueError(f"a Redis store URL starts with redis:// or rediss://, got {url.split('@')[-1]!r}")
        if ca_file is not None and scheme != "rediss":
            raise ValueError(f"ca_file {ca_file!r} is for a TLS connection: use a rediss:// URL")
        tls: dict[str, Any] = {} if ca_file is None else {"ssl_ca_certs": ca_file}
        # No client-side retries: one bounded try; what is owed goes with the next save.
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_ms / 1000,
                                            socket_connect_timeout=connect_timeout_ms / 1000,
                                            retry=Retry(NoBackoff(), 0), **tls)
        self.key = f"failover-policy:{policy_name}"
        self.log, self.folded = f"{self.key}:log", f"{self.key}:folded"
        # The URL without its password, for messages.
        self.where = f"{scheme}://{url.partition('://')[2].rpartition('@')[2]} {self.key}"

    def __repr__(self) -> str:
        return f"RedisStore({self.where!r})"

    def close(self) -> None:
        self._client.close()

    # ---- the four operations of the layout ----

    def load(self, guest: Guest) -> Loaded:
        """Base and log folded. A base the policy cannot read is moved to `P:corrupt-<ms>`; one of a
        newer schema raises StoreRefused and is left untouched."""
        base, folded_id, entries = self._bounded(lambda: self._read_all(self._client.pipeline(transaction=True)))
        position = entries[-1][0] if entries else folded_id or ZERO
        states = ([] if base is None else [base]) + [state for _, state in entries]
        folded = guest.fold(states, 0)
        why, newer = base_unreadable(folded, base is not None)
        if newer:
            raise StoreRefused(f"state store {self.where} holds state this policy cannot read: {why}")
        aside: tuple[SetAside, ...] = ()
        if why is not None and base is not None:
            aside = (self._bounded(lambda: self._set_base_aside(base, why)),)
        return Loaded(folded.state, folded.keep_until_ms, position, len(entries), aside)

    def append(self, delta: Delta) -> None:
        """XADD the delta and renew the log's TTL (until the delta's `keep_until_ms`, the end the
        guest found in the appender's whole state, and at least `forget_after_ms`), in one round
        trip."""
        ttl = ttl_ms(delta.keep_until_ms, now_ms(), self.options.forget_after_ms)

        def add() -> None:
            pipe = self._client.pipeline(transaction=False)
            pipe.xadd(self.log, {"state": delta.state})
            if ttl is not None:
                pipe.pexpire(self.log, ttl)
            pipe.execute()
        self._bounded(add)

    def read(self, position: str) -> Read:
        """The entries past `position`; `reload` when entries we never read were folded."""
        def read() -> Read:
            pipe = self._client.pipeline(transaction=False)
            pipe.get(self.folded)
            pipe.xread({self.log: position}, count=READ_COUNT)
            folded_id, reply = pipe.execute()
            if folded_id is not None and _id(folded_id.decode()) > _id(position):
                return Read([], position, reload=True)
            got = _entries(reply[0][1] if reply else [])
            while len(got) and len(got) % READ_COUNT == 0:
                more = self._client.xread({self.log: got[-1][0]}, count=READ_COUNT)
                if not more:
                    break
                got += _entries(more[0][1])
            return Read([s for _, s in got], got[-1][0] if got else position)
        return self._bounded(read)

    def fold_due(self, entries: int, position: str) -> bool:
        return entries > self.options.fold_after

    def fold(self, guest: Guest) -> bool:
        """Base and log folded into a new base and the folded entries trimmed, if no other process
        folded first (then False, not retried), and unless a newer policy wrote some of it."""
        def fold() -> bool:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(self.key, self.folded)
                base, _, entries = self._read_all(pipe, watching=True)
                if not entries:
                    return False
                states = ([] if base is None else [base]) + [state for _, state in entries]
                folded = guest.fold(states, self.options.forget_after_ms)
                if any(u.newer for u in folded.unreadable):
                    return False
                last, now = entries[-1][0], now_ms()
                why, _ = base_unreadable(folded, base is not None)
                first = 0 if base is None else 1
                bad = [entries[u.index - first][1] for u in folded.unreadable if u.index >= first]
                ttl = ttl_ms(folded.keep_until_ms, now, self.options.forget_after_ms)
                pipe.multi()
                if folded.state is None:
                    pipe.delete(self.key)
                else:
                    pipe.set(self.key, folded.state, px=ttl)
                pipe.set(self.folded, last, px=ttl)
                pipe.xtrim(self.log, minid=_next_id(last), approximate=False)
                if why is not None and base is not None:
                    pipe.set(f"{self.key}:corrupt-{now}", base, px=ASIDE_TTL_MS)
                if bad:
                    # Its own key (a millisecond later) when the base was set aside too.
                    pipe.set(f"{self.key}:corrupt-{now + (why is not None)}", "\n".join(bad), px=ASIDE_TTL_MS)
                try:
                    pipe.execute()
                except redis.WatchError:
                    return False
                return True
        return self._bounded(fold)

    # ---- Redis ----

    def _read_all(self, pipe: Any, watching: bool = False) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        """Base, folded id and every log entry in one round trip: in one MULTI, or (while watching)
        pipelined without one, since an EXEC would end the WATCH."""
        if watching:
            # WATCH pinned this pipeline to a connection of its own (no other command shares it),
            # where redis-py would send each command and wait for its reply: send all three at once.
            conn = pipe.connection
            try:
                conn.send_packed_command(conn.pack_commands(
                    [("GET", self.key), ("GET", self.folded), ("XRANGE", self.log, "-", "+")]))
                base, folded_id, raw = [pipe.parse_response(conn, name) for name in ("GET", "GET", "XRANGE")]
            except BaseException:
                # Replies may be left unread on it: it must not go back to the pool as it is.
                conn.disconnect()
                raise
        else:
            pipe.get(self.key)
            pipe.get(self.folded)
            pipe.xrange(self.log, "-", "+")
            base, folded_id, raw = pipe.execute()
        return _text(base), _text(folded_id), _entries(raw)

    def _set_base_aside(self, base: str, why: str) -> SetAside:
        aside = f"{self.key}:corrupt-{now_ms()}"
        with self._client.pipeline(transaction=True) as pipe:
            pipe.watch(self.key)
            if _text(pipe.get(self.key)) == base:  # else a fold replaced it meanwhile
                pipe.multi()
                pipe.set(aside, base, px=ASIDE_TTL_MS)
                pipe.delete(self.key)
                try:
                    pipe.execute()
                except redis.WatchError:
                    pass
        return SetAside(self.key, aside, why)

    def _bounded(self, op: Callable[[], T]) -> T:
        try:
            return op()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"state store {self.where} is unavailable: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"state store {self.where}: {exc}") from exc


def _entries(raw: list[Any] | None) -> list[tuple[str, str]]:
    out = []
    for entry_id, fields in raw or []:
        state = fields.get(b"state")
        # An entry without a state field is no snapshot: the policy refuses it and it is set aside.
        out.append((entry_id.decode(), _text(state) if state is not None else ""))
    return out
