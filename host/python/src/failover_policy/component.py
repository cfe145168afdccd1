"""Loading the policy component and calling it: the only module that touches wasmtime.

Traps of wasmtime-py handled here: every Store gets `set_wasi(WasiConfig())` (a fresh config
each time: it is consumed, and without one the first WASI use aborts the process); the host
import key carries the version; exports are looked up once; host imports never raise (an
exception would poison the instance); integers are range-checked in `types` before a call.
Traps are explicit checks, not signals: wasmtime's trap signal handlers are process-wide, and a
handler installed after them (`faulthandler.enable()`, as pytest and `-X faulthandler` do) turns
a guest trap into "Fatal Python error: Illegal instruction" that kills the process.

Calls go through `codec`: each export's type is read once per component and compiled into
converters, and host imports are answered the same way; wasmtime-py's generic `Func.__call__`
(which re-reads the type on every call) is used only for a function `codec` cannot compile, or
for an Instance made with `compiled=False` (tests and benchmarks compare the two).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import wasmtime
from wasmtime.component import Component, Linker, ResourceAny

from . import codec
from . import types as t
from .errors import ContractError
from .limits import EpochTicker, Limits
from .types import (
    Action,
    CallFailure,
    CallInput,
    CallProgress,
    CallSuccess,
    CheckReport,
    Classified,
    CredentialInfo,
    Delta,
    Event,
    FinalError,
    Folded,
    HttpResponse,
    NoRoute,
    Outbound,
    Request,
    Route,
    Start,
    Step,
    TransportFailure,
    TransportKind,
)

log = logging.getLogger("failover_policy")

# The contract versions this host speaks, oldest first. Each keeps every type and function of the
# one before, so all load through the same glue: only the interface keys' versions and the
# exports added (`ADDED`) differ.
CONTRACTS = ("0.1.0", "0.2.0", "0.3.0")
# The exports each version adds: the driven call (0.2.0), what a fleet sharing a store needs (0.3.0).
ADDED = {
    "0.2.0": ("[method]engine.begin", "[method]driven-call.next"),
    "0.3.0": ("[method]engine.absorb", "changes", "fold"),
}
POLICY_INTERFACE = "failover:policy/policy"
HOST_INTERFACE = "failover:policy/host"


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.signals_based_traps = False  # see the module docstring
    config.epoch_interruption = True
    # Opt-in: wasmtime's own compiled-code cache (its default directory), so a process per job
    # starts in milliseconds instead of compiling the component (about 1.3 s on 2 cores).
    if os.environ.get("FAILOVER_PY_COMPILE_CACHE") == "on":
        config.cache = True
    return wasmtime.Engine(config)


_ENGINE = _engine()
_TICKER = EpochTicker(_ENGINE)
# An epoch deadline that never comes, for the guest-driven `call` (it waits on the network).
_NO_DEADLINE = 1 << 40
_COMPILED: dict[str, Component] = {}
_COMPILED_LOCK = threading.Lock()
# Compiled converters per component (keyed by id; the entry keeps the component alive): the
# exports' by name, and the imports' by name, filled on their first call.
_PLANS: dict[int, tuple[Component, dict[str, Any], dict[str, Any]]] = {}


class HostImports(Protocol):
    """What a host supplies to the guest. Implementations may raise; the glue catches it."""

    def send(self, out: Outbound) -> HttpResponse | TransportFailure: ...
    def now_ms(self) -> int: ...
    def sleep_ms(self, ms: int) -> None: ...
    def emit(self, event: Event) -> None: ...
    def seed(self) -> int: ...


def default_wasm() -> bytes:
    packaged = resources.files("failover_policy").joinpath("policy.wasm")
    if not packaged.is_file():
        raise FileNotFoundError("failover_policy/policy.wasm is missing: build it with scripts/build-wasm.sh "
                                "(a source checkout) or install a wheel, which ships it")
    return packaged.read_bytes()


def compile_component(wasm: bytes | str | Path | None = None) -> Component:
    """Compile (once per distinct content) the given component, or the packaged default.
    Raises ContractError for a component of a contract version this host does not speak."""
    data = default_wasm() if wasm is None else wasm if isinstance(wasm, bytes) else Path(wasm).read_bytes()
    key = hashlib.sha256(data).hexdigest()
    with _COMPILED_LOCK:
        if key not in _COMPILED:
            component = Component(_ENGINE, data)
            contract(component)
            _COMPILED[key] = component
        return _COMPILED[key]


def contract(component: Component) -> str:
    """The contract version `component` exports its policy at, e.g. `0.3.0`; ContractError
    naming what it exports when this host does not speak that version."""
    exported = next((name for name in component.type.exports(_ENGINE)
                     if name.partition("@")[0] == POLICY_INTERFACE), None)
    version = exported.partition("@")[2] if exported else None
    if version not in CONTRACTS:
        raise ContractError(exported, CONTRACTS)
    return version


class Trapped(Exception):
    """The guest trapped (or wasmtime refused the call); the instance is unusable from now on.
    `why` is one line: the call and what happened (timeout, memory limit or the trap)."""

    def __init__(self, name: str, exc: BaseException | str) -> None:
        text = str(exc)
        self.why = f"{name}: {_cause(text)}"
        super().__init__(f"{self.why}\n{text}" if text != self.why else text)


def _cause(text: str) -> str:
    if "interrupt" in text:
        return "timed out (the per-call time limit)"
    if "alloc" in text and ("oom" in text or "handle_alloc_error" in text):
        return "out of memory (the memory limit)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "trapped"


def _guarded(name: str, fn: Callable[..., Any], fallback: Callable[[BaseException], Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            log.exception("host import %s failed; answering the guest with a safe value", name)
            return fallback(exc)
    return wrapper


def _plans(component: Component) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = _PLANS.get(id(component))
    if entry is None or entry[0] is not component:
        with _COMPILED_LOCK:
            entry = _PLANS.get(id(component))
            if entry is None or entry[0] is not component:
                entry = _PLANS[id(component)] = (component, {}, {})
    return entry[1], entry[2]


def _now_fallback(_exc: BaseException) -> int:
    import time
    return time.time_ns() // 1_000_000


class Instance:
    """One instantiated component in its own Store, with the export functions looked up once."""

    def __init__(self, component: Component, host: HostImports, limits: Limits = Limits(),
                 compiled: bool = True) -> None:
        self.limits = limits
        self.contract = contract(component)
        policy_export, host_import = f"{POLICY_INTERFACE}@{self.contract}", f"{HOST_INTERFACE}@{self.contract}"
        compiled = compiled and codec.SUPPORTED
        exports, imports = _plans(component) if compiled else ({}, {})
        _TICKER.ensure()
        linker = Linker(_ENGINE)
        linker.add_wasip2()
        funcs = {
            "send": _guarded("send", lambda o: t.enc_send_result(host.send(t.dec_outbound(o))),
                             lambda e: t.enc_send_result(TransportFailure(TransportKind.OTHER, f"host error: {e}"[:500]))),
            "now-ms": _guarded("now-ms", lambda: t.check_int("now_ms", host.now_ms(), t.U64), _now_fallback),
            "sleep-ms": _guarded("sleep-ms", host.sleep_ms, lambda e: None),
            "emit": _guarded("emit", lambda e: host.emit(t.dec_event(e)), lambda e: None),
            "seed": _guarded("seed", lambda: t.check_int("seed", host.seed(), t.U64), lambda e: 0),
        }
        with linker.root() as root:
            with root.add_instance(host_import) as imp:
                for name, fn in funcs.items():
                    if compiled:
                        codec.add_import(imp, name, fn, imports)
                    else:
                        imp.add_func(name, lambda _store, *args, fn=fn: fn(*args))
        self._store = wasmtime.Store(_ENGINE)
        self._store.set_wasi(wasmtime.WasiConfig())
        self._store.set_limits(memory_size=limits.memory_bytes)
        self._store.set_epoch_deadline(limits.ticks())
        self._instance = linker.instantiate(self._store, component)
        self.poisoned = False
        iface = self._instance.get_export_index(self._store, policy_export)
        if iface is None:
            raise Trapped("instantiate", f"the component does not export {policy_export}")
        names = ["classify", "succeeded", "merge", "version", "[static]engine.create", "[method]engine.select",
                 "[method]engine.start-call", "[method]engine.on-failure", "[method]engine.on-success", "[method]engine.prepare",
                 "[method]engine.call", "[method]engine.set-credentials", "[method]engine.snapshot",
                 "[method]engine.check"]
        for version in CONTRACTS[1:CONTRACTS.index(self.contract) + 1]:
            names += ADDED[version]
        # wasmtime-py's functions, and how each is called: compiled, or through wasmtime-py.
        self._funcs: dict[str, Any] = {}
        self._calls: dict[str, Callable[..., Any]] = {}
        arena = codec.Arena()
        for name in names:
            idx = self._instance.get_export_index(self._store, name, iface)
            func = self._instance.get_func(self._store, idx) if idx is not None else None
            if func is None:
                raise Trapped("instantiate", f"the component does not export {name} from {policy_export}")
            self._funcs[name] = func
            self._calls[name] = self._caller(name, func, exports, arena) if compiled else \
                (lambda *args, func=func: func(self._store, *args))

    def _caller(self, name: str, func: Any, plans: dict[str, Any], arena: codec.Arena) -> Callable[..., Any]:
        plan = plans.get(name)
        if plan is None:
            try:
                plan = plans[name] = codec.compile_func(func.type(self._store))
            except codec.Unsupported as exc:
                plan = plans[name] = exc
        if not isinstance(plan, codec.Unsupported):
            try:
                return codec.Func(func, self._store, arena, name, plan)
            except codec.Unsupported:
                pass
        return lambda *args: func(self._store, *args)

    def _call(self, name: str, *args: Any, timed: bool = True) -> Any:
        if self.poisoned:
            raise Trapped(name, "instance already trapped")
        self._store.set_epoch_deadline(self.limits.ticks() if timed else _NO_DEADLINE)
        try:
            return self._calls[name](*args)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            self.poisoned = True
            raise Trapped(name, exc) from exc

    def _sized(self, what: str, text: str) -> str:
        self.limits.payload(what, len(text.encode()))
        return text

    # ---- stateless exports ----

    def classify(self, provider: str, failure: HttpResponse | TransportFailure) -> Classified:
        return t.dec_classified(self._call("classify", t.check_str("provider", provider), t.enc_failure(failure)))

    def succeeded(self, response: HttpResponse) -> bool:
        return bool(self._call("succeeded", t.enc_http_response(response)))

    def merge(self, a: str, b: str) -> tuple[bool, str]:
        ok, payload = t.split_result(self._call("merge", self._sized("state", a), self._sized("state", b)), str)
        return ok, payload if ok else payload.message

    def changes(self, since: str, now: str) -> Delta | None | str:
        """The delta (None: nothing to append), or the guest's message naming the snapshot it
        cannot read. Both arms are records, so the result is always a tagged `Variant`."""
        ok, payload = t.split_result(self._call("changes", self._sized("state", since), self._sized("state", now)))
        if not ok:
            return str(payload.message)
        return None if payload is None else t.dec_delta(payload)

    def fold(self, states: list[str], now_ms: int, forget_after_ms: int) -> Folded | str:
        """The states folded, or the guest's message."""
        self.limits.payload("states", sum(len(s.encode()) for s in states))
        ok, payload = t.split_result(self._call("fold", [t.check_str("state", s) for s in states],
                                                t.check_int("now_ms", now_ms, t.U64),
                                                t.check_int("forget_after_ms", forget_after_ms, t.U64)))
        return t.dec_folded(payload) if ok else payload.message

    def version(self) -> tuple[str, int]:
        v = self._call("version")
        return v.policy, v.schema

    # ---- engine ----

    def create(self, config: str, state: str | None, creds: list[CredentialInfo]) -> ResourceAny | tuple[str, str]:
        """An engine handle, or (field, message) of the config error."""
        ok, payload = t.split_result(
            self._call("[static]engine.create", self._sized("config", t.check_str("config", config)),
                       None if state is None else self._sized("state", t.check_str("state", state)),
                       t.enc_credentials(creds)),
            ResourceAny)
        return payload if ok else (payload.field, payload.message)

    def select(self, eng: ResourceAny) -> Route | NoRoute:
        ok, payload = t.split_result(self._call("[method]engine.select", eng))
        return t.dec_route(payload) if ok else t.dec_no_route(payload)

    def start_call(self, eng: ResourceAny) -> Start | FinalError:
        ok, payload = t.split_result(self._call("[method]engine.start-call", eng))
        return t.dec_start(payload) if ok else t.dec_final_error(payload)

    def on_failure(self, eng: ResourceAny, route: Route, failure: HttpResponse | TransportFailure,
                   progress: CallProgress | None) -> Action:
        return t.dec_action(self._call("[method]engine.on-failure", eng, t.enc_route(route),
                                       t.enc_failure(failure), t.enc_progress(progress)))

    def on_success(self, eng: ResourceAny, route: Route) -> None:
        self._call("[method]engine.on-success", eng, t.enc_route(route))

    def prepare(self, eng: ResourceAny, route: Route, request: Request) -> Outbound | str:
        self.limits.payload("request body", len(request.body))
        ok, payload = t.split_result(self._call("[method]engine.prepare", eng, t.enc_route(route),
                                                t.enc_request(request)))
        return t.dec_outbound(payload) if ok else payload.message

    def call(self, eng: ResourceAny, request: Request) -> CallSuccess | CallFailure:
        self.limits.payload("request body", len(request.body))
        ok, p = t.split_result(self._call("[method]engine.call", eng, t.enc_request(request), timed=False))
        attempts = [t.dec_attempt(a) for a in p.attempts]
        if ok:
            return CallSuccess(t.dec_http_response(p.response), t.dec_route(p.route), attempts)
        return CallFailure(t.dec_final_error(p.error), attempts)

    @property
    def drives(self) -> bool:
        """Whether the policy has the driven call (contract 0.2.0 on)."""
        return "[method]engine.begin" in self._calls

    def begin(self, eng: ResourceAny, request: Request, timeout_ms: int | None) -> ResourceAny:
        self.limits.payload("request body", len(request.body))
        return self._call("[method]engine.begin", eng, t.enc_request(request), t.enc_call_options(timeout_ms))

    def next(self, call: ResourceAny, given: CallInput) -> Step:
        self.limits.payload("read", len(given.data))
        return t.dec_step(self._call("[method]driven-call.next", call, t.enc_call_input(given)))

    @property
    def fleet(self) -> bool:
        """Whether the policy has what a fleet sharing a store needs (`absorb`, `changes`, `fold`:
        contract 0.3.0 on)."""
        return "fold" in self._calls

    def absorb(self, eng: ResourceAny, state: str) -> str | None:
        """None once `state` is merged into the running engine, else the guest's message."""
        ok, payload = t.split_result(self._call("[method]engine.absorb", eng, self._sized("state", state)), type(None))
        return None if ok else payload.message

    def set_credentials(self, eng: ResourceAny, creds: list[CredentialInfo]) -> None:
        self._call("[method]engine.set-credentials", eng, t.enc_credentials(creds))

    def snapshot(self, eng: ResourceAny) -> str:
        return self._sized("snapshot", self._call("[method]engine.snapshot", eng))

    def check(self, eng: ResourceAny) -> CheckReport:
        return t.dec_check_report(self._call("[method]engine.check", eng))

    def drop(self, handle: ResourceAny) -> None:
        """Drops an engine or a driven call."""
        if not self.poisoned:
            try:
                handle.drop(self._store)
            except (wasmtime.WasmtimeError, wasmtime.Trap):
                self.poisoned = True
