"""`Policy`: the Python face of the policy component. The guest decides; this carries out."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import secrets as _random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from wasmtime.component import ResourceAny

from . import fault, fleet
from .clock import Clock, SystemClock
from .component import Instance, Trapped, compile_component
from .errors import ConfigError, ContractError, FailoverError, GuestTrap, NoRouteError, PolicyError, PrepareError, SwapError
from .events import EventLog
from .fault import FailMode, Supervision
from .http import ERROR_BODY_LIMIT, HttpSender
from .limits import Limits
from .secrets import Scrub, Secrets
from .store import FileStore, RedisStore, Stats, StoreSync
from .types import (
    Action,
    CallFailure,
    CallInput,
    CallProgress,
    CallSuccess,
    CheckReport,
    Classified,
    Delta,
    Event,
    EventKind,
    FinalError,
    Folded,
    Headers,
    HttpResponse,
    NoRoute,
    Outbound,
    Request,
    Route,
    Start,
    Step,
    StepKind,
    TransportFailure,
    TransportKind,
)
from .upstream import HttpCarrier

log = logging.getLogger("failover_policy")
T = TypeVar("T")

Wasm = bytes | str | Path | None


def _json_text(value: Any, what: str) -> str:
    """A config/state given as a dict, JSON text, or a path to a JSON file."""
    if isinstance(value, Mapping):
        return json.dumps(value)
    if isinstance(value, Path) or (isinstance(value, str) and not value.lstrip().startswith("{")):
        try:
            return Path(value).read_text()
        except OSError as exc:
            raise ConfigError(what, f"cannot read {value}: {exc}") from exc
    if isinstance(value, str):
        return value
    raise ConfigError(what, f"expected a dict, JSON text or a path, got {type(value).__name__}")


def _headers(headers: Mapping[str, str] | Headers | None) -> Headers:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in items]


def _body(body: bytes | str | Any) -> bytes:
    data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return data[:ERROR_BODY_LIMIT]


class _Host:
    """The guest's imports for one Policy: HTTP with secrets, clock, events, entropy."""

    def __init__(self, secrets: Secrets, clock: Clock, events: EventLog, sender: HttpSender) -> None:
        self.secrets, self.clock, self.events, self.sender = secrets, clock, events, sender
        # Events the guest has emitted: a select that emitted none changed no persisted state.
        self.emitted = 0

    def send(self, out: Outbound) -> HttpResponse | TransportFailure:
        return self.sender.send(out, self.secrets.get(out.route.credential))

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def sleep_ms(self, ms: int) -> None:
        self.clock.sleep_ms(ms)

    def emit(self, event: Event) -> None:
        self.emitted += 1
        self.events(event)

    def seed(self) -> int:
        return _random.randbits(64)


class DrivenCall:
    """One driven call of a Policy (`Policy.begin`); `next` holds the policy's lock only while
    the guest decides."""

    def __init__(self, policy: Policy, instance: Instance, handle: ResourceAny) -> None:
        self._policy, self.instance, self.handle = policy, instance, handle
        self._open = True

    def next(self, given: CallInput) -> Step:
        return self._policy._next(self, given)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._policy._drop(self)


class FailedCall:
    """A driven call the failed policy could not begin: it gives up at once, saying why."""

    def __init__(self, why: str) -> None:
        self._why = why

    def next(self, given: CallInput) -> Step:
        return fault.give_up(self._why)

    def close(self) -> None:
        pass


class _StoreGuest:
    """The policy's operations a store folds and diffs with (`store.layout.Guest`), made per use
    so the store's per-process state never holds the policy (its exit hook must not keep it alive)."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def fold(self, states: list[str], forget_after_ms: int) -> Folded:
        return self._policy.fold(states, forget_after_ms=forget_after_ms)

    def changes(self, since: str, now: str) -> Delta | None:
        return self._policy.changes(since, now)

    def merge(self, a: str, b: str) -> str:
        return self._policy.merge(a, b)


# Policies with a store and something possibly owed to it: flushed at interpreter exit.
_OPEN: weakref.WeakSet[Policy] = weakref.WeakSet()
EXIT_FLUSH_S = 2.0
"""How long close() and the exit hook keep retrying what is owed to a store."""


def _close_open() -> None:
    for policy in list(_OPEN):
        policy.close()


atexit.register(_close_open)


class Policy:
    """A loaded policy: one component instance and one engine, guarded by a lock.

    Use `Policy.load(...)`. Every guest call holds the lock, so threads may share a Policy.
    """

    # With a state store: this process's side of it (known state, log position, what is owed).
    _sync: StoreSync | None = None
    _finalizer: weakref.finalize | None = None

    def __init__(self, config: str, host: _Host, wasm: Wasm, state: str | None,
                 limits: Limits = Limits(), supervision: Supervision = Supervision()) -> None:
        self._config = config
        self._host = host
        self._lock = threading.RLock()
        self._wasm = wasm
        self._limits, self._supervision = limits, supervision
        # The policy a swap replaced, to fall back to in a crash loop; fault times in the window.
        self._previous: Wasm | None = None
        self._previous_set = False
        self._faults: deque[float] = deque()
        # Why every call now fails closed (a crash loop with nothing to fall back to), if it does.
        self._closed: str | None = None
        self._inst, self._engine = self._instantiate(wasm, state)
        self._last_snapshot = self._inst.snapshot(self._engine)

    @classmethod
    def load(cls, config: Mapping[str, Any] | str | Path, state: Mapping[str, Any] | str | Path | None = None,
             secrets: Mapping[str, str] | None = None, wasm: Wasm = None, clock: Clock | None = None,
             transport: httpx.BaseTransport | None = None, events: EventLog | None = None,
             limits: Limits | None = None, supervision: Supervision | FailMode = "open",
             store: FileStore | RedisStore | None = None) -> Policy:
        """Load `config` (dict, JSON text or path) with an optional snapshot `state`.

        With a `store` (FileStore, RedisStore) the policy starts from the stored state merged
        with `state`, appends what it learns after every state change, and at the start of a call
        (at most every `refresh_ms`) takes in what other processes stored. Each store operation is
        bounded by the store's timeout; a failure is kept in `store_error` and logged, and what it
        could not save stays owed to the next save, `close()` or the interpreter's exit.

        Secrets come from `secrets` (credential id -> secret) or else the environment variables
        named in the config. `wasm` replaces the packaged component; `transport` is the httpx
        transport used to reach providers. `limits` bound each guest call (1 s, 64 MiB, 1 MiB
        payloads by default); `supervision` (or just its fail mode, 'open' or 'closed') says what
        a call gets when the policy fails. Raises ConfigError naming the bad field.
        """
        text = _json_text(config, "config")
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ConfigError("config", f"not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ConfigError("config", "must be a JSON object")
        state_text = None if state is None else _json_text(state, "state")
        sender = HttpSender(httpx.Client(transport=transport) if transport is not None else None)
        host = _Host(Secrets(parsed, secrets), clock or SystemClock(), events or EventLog(), sender)
        sup = supervision if isinstance(supervision, Supervision) else Supervision(supervision)
        policy = cls(text, host, wasm, state_text, limits or Limits(), sup)
        if store is not None:
            policy._attach(store)
        return policy

    def _instantiate(self, wasm: Wasm, state: str | None) -> tuple[Instance, ResourceAny]:
        inst = Instance(compile_component(wasm), self._host, self._limits)
        created = inst.create(self._config, state, self._host.secrets.infos())
        if isinstance(created, tuple):
            raise ConfigError(*created)
        return inst, created

    # ---- the state store ----

    def _attach(self, store: FileStore | RedisStore) -> None:
        sync = self._sync = StoreSync(store)
        with self._lock:
            stored = sync.load(_StoreGuest(self))
            if stored is not None:
                # A fresh engine from the stored state announces the route it starts on.
                state = self.merge(stored, self._last_snapshot)
                self._inst, self._engine = self._instantiate(self._wasm, state)
                self._last_snapshot = self._inst.snapshot(self._engine)
        _OPEN.add(self)
        # Dropped without close(): what is owed goes whole (no policy left to diff with).
        self._finalizer = weakref.finalize(self, sync.flush_whole)
        self._finalizer.atexit = False  # at exit, _close_open flushes while the policy still lives

    @property
    def store_error(self) -> PolicyError | None:
        """The last store operation's error, until one succeeds (None without a store)."""
        return None if self._sync is None else self._sync.error

    @property
    def store_stats(self) -> Stats | None:
        """What this process did with its store: saves and their times, refreshes, folds."""
        return None if self._sync is None else self._sync.stats

    def _save(self, before: str) -> None:
        """After a state change, or while a save is owed: append what the store lacks."""
        sync = self._sync
        if sync is not None and (self._last_snapshot != before or sync.owed):
            sync.save(_StoreGuest(self), self._last_snapshot)

    def _refresh(self) -> None:
        """At a call's start: take in what peers stored (paced by the store's `refresh_ms`)."""
        sync = self._sync
        assert sync is not None
        state = sync.refresh(_StoreGuest(self), live=self._inst.fleet)
        if state is None:
            return
        try:
            if self._inst.fleet:
                why = self._inst.absorb(self._engine, state)
                if why is not None:
                    log.warning("policy state from %s not taken in: %s", sync.store.where, why)
                    return
            else:  # a 0.1/0.2 policy (only a load delayed by a failure gets here): a fresh engine
                self._inst, self._engine = self._instantiate(self._wasm, self.merge(state, self._last_snapshot))
            self._last_snapshot = self._inst.snapshot(self._engine)
        except Trapped as exc:
            log.error("policy component failed taking in stored state: %s", exc)
            self._fault(exc.why)
        except PolicyError as exc:
            log.warning("policy state from %s not taken in: %s", sync.store.where, exc)

    def close(self, wait_s: float = EXIT_FLUSH_S) -> bool:
        """Flush what is owed to the store (retrying for up to `wait_s`) and stop using it; the
        policy goes on deciding from memory. Runs at interpreter exit for every open policy.
        True when nothing is owed any more (always, without a store)."""
        sync, self._sync = self._sync, None
        if sync is None:
            return True
        _OPEN.discard(self)
        if self._finalizer is not None:
            self._finalizer.detach()
        if not sync.owed:
            return True
        if not self._lock.acquire(timeout=wait_s):  # a call stuck elsewhere: no diff, the whole state
            sync.flush_whole()
            return not sync.owed
        try:
            done = sync.flush(_StoreGuest(self), self._last_snapshot, wait_s)
        finally:
            self._lock.release()
        if not done:
            log.warning("policy state owed to %s not saved within %.1f s: %s", sync.store.where, wait_s, sync.error)
        return done

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- plumbing: every guest call goes through here ----

    def _guest(self, fn: Callable[[Instance, ResourceAny], T], mutates: bool | str = True,
               fallback: Callable[[FailMode, str], T] | None = None, starts: bool = False) -> T:
        """`fn` on the instance; when the policy fails, `fallback` decides (or GuestTrap is raised).

        After a call that changes persisted state (`mutates` True) the state is snapshotted, so a
        trap later restarts from it and nothing a caller already saw is lost. `mutates="events"`
        (select, start-call): only when the call emitted an event, since those calls change
        persisted state only to claim a circuit's probe or to move the active chain position, and
        announce each (a test holds the guest to this).

        `starts`: a call starts here (select, start-call, call, begin), so with a store, what peers
        stored is taken in first, and a save still owed is caught up.
        """
        with self._lock:
            if self._closed is not None:
                return self._failed(self._closed, "closed", fallback)
            if starts and self._sync is not None:
                self._refresh()
            emitted = self._host.emitted
            try:
                result = fn(self._inst, self._engine)
                if mutates is True or (mutates == "events" and self._host.emitted != emitted):
                    before, self._last_snapshot = self._last_snapshot, self._inst.snapshot(self._engine)
                    self._save(before)
                elif starts and self._sync is not None and self._sync.owed:
                    self._save(self._last_snapshot)  # a save still owed: catch up
                return result
            except Trapped as exc:
                log.error("policy component failed: %s", exc)
                self._fault(exc.why)
                return self._failed(exc.why, self._supervision.fail_mode, fallback)

    @staticmethod
    def _failed(why: str, mode: FailMode, fallback: Callable[[FailMode, str], T] | None) -> T:
        if fallback is None:
            raise GuestTrap(f"the failover policy failed ({why}); the host restored the last good state")
        return fallback(mode, why)

    def _fault(self, why: str) -> None:
        """After a fault, a trap poisons the instance: restart from the last good state, or in a
        crash loop fall back to the previous policy, or fail closed."""
        now = time.monotonic()
        self._faults.append(now)
        while now - self._faults[0] > self._supervision.crash_window_s:
            self._faults.popleft()
        n, window = len(self._faults), self._supervision.crash_window_s
        if n < self._supervision.max_crashes and self._restart(self._wasm):
            return self._notice(fault.FAULT_RULE, f"the policy failed ({why}); restarted from the last good state "
                                f"({n} of {self._supervision.max_crashes} faults allowed within {window:g} s)")
        self._faults.clear()
        if self._previous_set and self._restart(self._previous):
            self._wasm, self._previous_set = self._previous, False
            return self._notice("host.policy-crash-loop", fault.crash_loop_message(n, window, why))
        self._closed = why
        self._notice("host.policy-closed", fault.closed_message(n, window, why))

    def _restart(self, wasm: Wasm) -> bool:
        try:
            self._inst, self._engine = self._instantiate(wasm, self._last_snapshot)
            return True
        except Exception as exc:  # a policy that fails even to start is a fault like any other
            log.error("restarting the policy failed: %s", exc)
            return False

    def _notice(self, rule: str, message: str) -> None:
        self._host.events(Event(EventKind.NOTICE, self._host.clock.now_ms(), None, rule, message))

    # ---- the decision API ----

    def select(self) -> Route:
        """The route to start with; raises NoRouteError with per-provider statuses."""
        result = self._guest(lambda i, e: i.select(e), mutates="events", fallback=lambda m, why: fault.no_route(why),
                             starts=True)
        if isinstance(result, NoRoute):
            raise NoRouteError(result)
        return result

    def start_call(self) -> Start:
        """How a call that the host drives starts: send on `start.route` after `start.delay_ms`
        (0 = now; more when nothing is usable yet but the earliest route fits the call's wait
        budget), and pass `start.progress` to the call's first `on_failure`. Raises FailoverError
        with the guest's final error (per provider why) when no route will do within the budget.
        """
        result = self._guest(lambda i, e: i.start_call(e), mutates="events",
                             fallback=lambda m, why: fault.final_error(why), starts=True)
        if isinstance(result, FinalError):
            raise FailoverError(result, [])
        return result

    def on_failure(self, route: Route, status: int = 0, headers: Mapping[str, str] | Headers | None = None,
                   body: bytes | str | Any = b"", transport: TransportKind | str | None = None,
                   progress: CallProgress | None = None, message: str = "") -> Action:
        """The next action after a failed attempt: an HTTP `status`, or a `transport` error kind.
        The route's secret is taken out of it first, should the provider have echoed it."""
        failure = self._failure(status, headers, body, transport, message)
        scrub = Scrub(self._host.secrets.get(route.credential))
        failure = scrub.response(failure) if isinstance(failure, HttpResponse) else scrub.failure(failure)
        return self._guest(lambda i, e: i.on_failure(e, route, failure, progress),
                           fallback=lambda m, why: fault.action(m, route, failure, progress, why))

    def on_success(self, route: Route) -> None:
        self._guest(lambda i, e: i.on_success(e, route), fallback=lambda m, why: None)

    def prepare(self, route: Route, request: Request) -> Outbound:
        """The request rewritten for `route` (URL, model, auth header, timeouts), secret not attached."""
        result = self._guest(lambda i, e: i.prepare(e, route, request), mutates=False)
        if isinstance(result, str):
            raise PrepareError(result)
        return result

    @property
    def drives(self) -> bool:
        """Whether the running policy has the driven call (contract 0.2.0); a 0.1.0 one has not."""
        return self._inst.drives

    def begin(self, request: Request, timeout_ms: int | None = None) -> DrivenCall | FailedCall:
        """A driven call: the guest decides each step (`DrivenCall.next`), the caller carries it
        out (see `drive.Drive`). `timeout_ms` is the caller's own timeout, when it set one: the
        call's deadline is the earlier of it and the config's `deadline_ms`."""
        if not self.drives:
            raise ContractError(f"{self.contract} (no driven call)", ("0.2.0",))
        return self._guest(lambda i, e: DrivenCall(self, i, i.begin(e, request, timeout_ms)), mutates=False,
                           fallback=lambda m, why: FailedCall(why), starts=True)

    def _next(self, call: DrivenCall, given: CallInput) -> Step:
        def next_step(inst: Instance, _engine: ResourceAny) -> Step:
            if inst is not call.instance:
                return fault.give_up("the policy was restarted or swapped during the call")
            return inst.next(call.handle, given)

        step = self._guest(next_step, mutates="events", fallback=lambda m, why: fault.give_up(why))
        if step.kind in (StepKind.DONE, StepKind.GIVE_UP):
            self._guest(lambda i, e: None)  # the call's outcome is in the state: snapshot and save it
        return step

    def _drop(self, call: DrivenCall) -> None:
        with self._lock:
            if self._inst is call.instance:
                self._inst.drop(call.handle)

    def call(self, request: Request) -> CallSuccess:
        """The guest-driven loop; raises FailoverError with the policy's final message."""
        result = self._guest(lambda i, e: i.call(e, request),
                             fallback=lambda m, why: CallFailure(fault.final_error(why), []), starts=True)
        if isinstance(result, CallSuccess):
            return result
        raise FailoverError(result.error, result.attempts)

    def succeeded(self, status: int, headers: Mapping[str, str] | Headers | None = None,
                  body: bytes | str | Any = b"") -> bool:
        """Whether a response is an answer: a 2xx whose body is no error (an error event in an
        event stream, an error document). A loop that calls `on_success`/`on_failure` itself asks
        this instead of checking the status. Only the body's first 64 KiB are read (and passed);
        while the policy is failed, a 2xx status is an answer."""
        response = HttpResponse(status, _headers(headers), _body(body))
        return self._guest(lambda i, e: i.succeeded(response), mutates=False,
                           fallback=lambda m, why: fault.succeeded(status))

    def classify(self, provider: str, status: int = 0, headers: Mapping[str, str] | Headers | None = None,
                 body: bytes | str | Any = b"", transport: TransportKind | str | None = None,
                 message: str = "") -> Classified:
        failure = self._failure(status, headers, body, transport, message)
        return self._guest(lambda i, e: i.classify(provider, failure), mutates=False)

    def snapshot(self) -> str:
        """The state as JSON, for `Policy.load(config, state=...)` in the next process."""
        return self._guest(lambda i, e: i.snapshot(e), mutates=False, fallback=lambda m, why: self._last_snapshot)

    def check(self) -> CheckReport:
        return self._guest(lambda i, e: i.check(e), mutates=False)

    def merge(self, a: str, b: str) -> str:
        """Two snapshots merged by the guest's rules; raises ConfigError (field `state`) with
        the guest's message naming the snapshot it cannot read."""
        ok, payload = self._guest(lambda i, e: i.merge(a, b), mutates=False)
        if not ok:
            raise ConfigError("state", payload)
        return payload

    def changes(self, since: str, now: str) -> Delta | None:
        """What snapshot `now` knows that `since` does not: `Delta.state`, a snapshot to append,
        and `Delta.keep_until_ms`, the latest cooldown or open-circuit end in all of `now` (0 when
        none), which a store keeps it until at least. None: nothing but the save time or
        randomness differ. A 0.1/0.2 policy gives the whole of `now` when it is not `since`, with
        `keep_until_ms` 0. Raises ConfigError (field `state`) naming a snapshot it cannot read."""
        def diff(i: Instance, _e: ResourceAny) -> Delta | None | str:
            return i.changes(since, now) if i.fleet else fleet.changes_whole(since, now)
        result = self._guest(diff, mutates=False)
        if isinstance(result, str):
            raise ConfigError("state", result)
        return result

    def fold(self, states: list[str], now_ms: int | None = None, forget_after_ms: int = 0) -> Folded:
        """`states` merged into one, forgetting the records of credentials and routes with no sign
        of life in the `forget_after_ms` before `now_ms` (the policy's clock by default; 0 forgets
        nothing); `Folded.keep_until_ms` is the latest cooldown or open-circuit end in the result
        (0 when none) and `Folded.unreadable` lists the states it left out and why. Any number of
        states: over the payload limit they are folded in chunks. A 0.1/0.2 policy merges pairwise,
        forgets nothing and gives `keep_until_ms` 0."""
        now = self.now_ms() if now_ms is None else now_ms

        def run(i: Instance, _e: ResourceAny) -> Folded | str:
            if not i.fleet:
                return fleet.fold_pairwise(i.merge, states)
            return fleet.fold_chunked(lambda chunk: i.fold(chunk, now, forget_after_ms), states,
                                      self._limits.max_payload_bytes)
        result = self._guest(run, mutates=False)
        if isinstance(result, str):
            raise ConfigError("state", result)
        return result

    def absorb(self, state: str) -> None:
        """What other processes stored, merged into the running engine by `merge`'s rules (a key a
        peer found exhausted cools here from now on). Raises ConfigError (field `state`) for state
        it cannot read, ContractError on a 0.1/0.2 policy, which cannot (swap in a 0.3.0 one)."""
        def run(i: Instance, e: ResourceAny) -> str | None:
            if not i.fleet:
                raise ContractError.lacks(i.contract, "engine.absorb", "0.3.0")
            return i.absorb(e, state)
        why = self._guest(run)
        if why is not None:
            raise ConfigError("state", why)

    def refresh_credentials(self, secrets: Mapping[str, str] | None = None) -> None:
        """Re-read the secrets (or take new ones) and tell the guest which ids have one."""
        if secrets is not None:
            self._host.secrets = Secrets(json.loads(self._config), secrets)
        infos = self._host.secrets.infos()
        self._guest(lambda i, e: i.set_credentials(e, infos))

    def version(self) -> tuple[str, int]:
        return self._guest(lambda i, e: i.version(), mutates=False)

    @property
    def contract(self) -> str:
        """The contract version the running policy speaks: `0.3.0`, or `0.1.0`/`0.2.0` (a deployed
        older build)."""
        return self._inst.contract

    def swap(self, wasm: bytes | str | Path) -> CheckReport:
        """Switch to another component, carrying the state; on any failure keep the current one.

        The new component is compiled, instantiated, given an engine from the current snapshot
        and self-checked while holding the lock, so concurrent callers see the old policy or the
        new one, never a half-switched one.
        """
        try:
            component = compile_component(wasm)
        except ContractError as exc:
            raise SwapError(f"refused a new policy, keeping the running one: {exc}") from exc
        except Exception as exc:
            raise SwapError(f"cannot load policy component {wasm!s:.200}: {exc}") from exc
        with self._lock:
            state = self._guest(lambda i, e: i.snapshot(e), mutates=False)
            try:
                inst = Instance(component, self._host, self._limits)
                created = inst.create(self._config, state, self._host.secrets.infos())
                if isinstance(created, tuple):
                    raise SwapError(f"the new policy refused the config or state: {created[0]}: {created[1]}")
                report = inst.check(created)
            except SwapError:
                raise
            except Exception as exc:
                raise SwapError(f"the new policy component failed validation: {exc}") from exc
            if not report.ok:
                raise SwapError("the new policy failed its self-check: " + "; ".join(report.findings))
            old_inst, old_engine = self._inst, self._engine
            self._previous, self._previous_set = self._wasm, True
            self._inst, self._engine, self._wasm = inst, created, wasm
            self._last_snapshot = state
            self._faults.clear()
            self._closed = None
            old_inst.drop(old_engine)
            return report

    # ---- for transports: carrying out, outside the lock ----

    def send(self, out: Outbound) -> HttpResponse | TransportFailure:
        """Send a prepared outbound with its credential's secret attached; never raises."""
        return self._host.send(out)

    def sleep_ms(self, ms: int) -> None:
        self._host.clock.sleep_ms(ms)

    async def wait_ms(self, ms: int) -> None:
        """Wait `ms` on the policy's clock without blocking the event loop."""
        wait = getattr(self._host.clock, "wait_ms", None)
        if wait is not None:
            await wait(ms)
        else:
            await asyncio.sleep(ms / 1000)

    def now_ms(self) -> int:
        return self._host.clock.now_ms()

    @property
    def events(self) -> list[Event]:
        return self._host.events.events

    def secret(self, credential: str) -> str | None:
        return self._host.secrets.get(credential)

    def carrier(self, fresh: Callable[[], httpx.Client] | None = None) -> HttpCarrier:
        """What a driven call is carried out with: this policy's HTTP client, secrets and clock."""
        return HttpCarrier(self._host.sender.client, self.secret, self._host.clock.sleep_ms, fresh)

    @staticmethod
    def _failure(status: int, headers: Mapping[str, str] | Headers | None, body: bytes | str | Any,
                 transport: TransportKind | str | None, message: str) -> HttpResponse | TransportFailure:
        if transport is not None:
            return TransportFailure(TransportKind(transport), message or str(TransportKind(transport).value))
        return HttpResponse(status, _headers(headers), _body(body))
