"""The compiled call path (`codec`): every WIT shape the contract uses goes through the real
component and decodes exactly as wasmtime-py's own `Func.__call__` decodes it; list<u8> in
bulk (empty to 1 MiB); nothing leaks."""

import ctypes
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import fallback_config
from wasmtime.component import Record, ResourceAny, Variant

from failover_policy import VirtualClock, codec
from failover_policy import component as comp
from failover_policy import types as t
from failover_policy.limits import Limits
from failover_policy.types import (
    CallProgress,
    CredentialInfo,
    HttpResponse,
    Outbound,
    Request,
    Route,
    TransportFailure,
    TransportKind,
)

# These tests compare the compiled converters with wasmtime-py's own path: nothing to compare
# when the suite runs with the converters off.
pytestmark = pytest.mark.skipif(os.environ.get("FAILOVER_PY_CONVERTERS") == "off", reason="compiled converters off")

def _config() -> dict:
    config = fallback_config(SimpleNamespace(base_url=lambda name: f"https://{name}.example/v1"))
    config["providers"]["alibaba-coding-plan"]["credentials"].append({"id": "ali-2"})
    return config


CHAIN = _config()
CREDS = [CredentialInfo(i, f"fp-{i}") for i in ("ali-1", "ali-2", "ten-1")]
PRIMARY = Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0)
FALLBACK = Route("tencent-token-plan", "kimi2.5", "ten-1", 1)
JSON = [("content-type", "application/json")]
QUOTA = b'{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota"}}'
ALL_BYTES = bytes(range(256))
MIB = 1 << 20


class Host:
    """Deterministic host imports that record what the guest handed them."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.events: list[Any] = []
        self.sent: list[Outbound] = []

    def send(self, out: Outbound) -> HttpResponse | TransportFailure:
        self.sent.append(out)
        if len(self.sent) % 3 == 1:
            return HttpResponse(429, JSON + [("retry-after", "2")], b'{"error":{"message":"Rate limit reached"}}')
        if len(self.sent) % 3 == 2:
            return TransportFailure(TransportKind.RESET, "connection reset by peer")
        return HttpResponse(200, JSON, ALL_BYTES)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def sleep_ms(self, ms: int) -> None:
        self.clock.advance(ms)

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def seed(self) -> int:
        return (1 << 64) - 1


def pair() -> tuple[tuple[comp.Instance, Host], tuple[comp.Instance, Host]]:
    """The same component twice: compiled calls, and wasmtime-py's generic ones."""
    component = comp.compile_component()
    fast, slow = Host(), Host()
    # wasmtime-py converts a 1 MiB body byte by byte after the call's deadline is set: give it time.
    limits = Limits(call_time_s=60)
    return ((comp.Instance(component, fast, limits), fast),
            (comp.Instance(component, slow, limits, compiled=False), slow))


def raw(inst: comp.Instance, name: str, *args: Any) -> Any:
    """What the export returns before `types` decodes it."""
    return inst._call(name, *args)


def engine(inst: comp.Instance, config: dict = CHAIN, state: str | None = None) -> ResourceAny:
    created = raw(inst, "[static]engine.create", json.dumps(config), state, t.enc_credentials(CREDS))
    assert isinstance(created, ResourceAny), created.__dict__
    return created


def failure(status: int = 429, body: bytes = QUOTA, headers: list[tuple[str, str]] = JSON) -> Record:
    return t.enc_failure(HttpResponse(status, headers, body))


def request(body: bytes) -> Record:
    return t.enc_request(Request("/chat/completions", "POST", [("x-trace", "1"), ("x-empty", "")], body))


# Each case: a sequence of export calls (name, args built from the engine), run the same way in
# both instances; every raw result must be equal.
CASES: list[tuple[str, list[tuple[str, Any]]]] = [
    ("record of string and u32 (version)", [("version", lambda e: ())]),
    ("result<string, record> both arms (merge)", [
        ("merge", lambda e: ("{}", "{}")),
        ("merge", lambda e: ('{"schema":2}', '{"schema":2}')),
    ]),
    ("result<route, no-route> ok, then err with nested options and lists (select)", [
        ("[method]engine.select", lambda e: (e,)),
        *[("[method]engine.on-failure", lambda e, c=c: (e, t.enc_route(Route(PRIMARY.provider, PRIMARY.model, c, 0)),
                                                         failure(), None))
          for c in ("ali-1", "ali-2")],
        ("[method]engine.on-failure", lambda e: (e, t.enc_route(FALLBACK), failure(), None)),
        ("[method]engine.select", lambda e: (e,)),
    ]),
    ("result<start, final-error> (start-call)", [("[method]engine.start-call", lambda e: (e,))]),
    ("action: enums, bools, u64, option some/none, list<u32>, option<record> (on-failure)", [
        ("[method]engine.on-failure", lambda e: (e, t.enc_route(PRIMARY), failure(503, b"overloaded"), None)),
        ("[method]engine.on-failure", lambda e: (
            e, t.enc_route(PRIMARY), failure(429, QUOTA, JSON + [("retry-after", "30")]),
            t.enc_progress(CallProgress(3, 1 << 40, 1, [0, 7, (1 << 32) - 1])))),
        ("[method]engine.on-failure", lambda e: (
            e, t.enc_route(PRIMARY), t.enc_failure(TransportFailure(TransportKind.TIMEOUT, "read timed out ü")),
            t.enc_progress(CallProgress(0, 0, 0, [])))),
    ]),
    ("failure with an empty body and no headers (classify)", [
        ("classify", lambda e: ("openai", failure(500, b"", []))),
        ("classify", lambda e: ("anthropic", failure(529, ALL_BYTES * 4))),
        ("classify", lambda e: (PRIMARY.provider, t.enc_failure(TransportFailure(TransportKind.DNS, "")))),
    ]),
    ("no result (on-success, set-credentials), list<string> (check)", [
        ("[method]engine.on-success", lambda e: (e, t.enc_route(PRIMARY))),
        ("[method]engine.set-credentials", lambda e: (e, t.enc_credentials(CREDS[:2]))),
        ("[method]engine.check", lambda e: (e,)),
        ("[method]engine.snapshot", lambda e: (e,)),
    ]),
    ("list<u8> both ways, empty to 1 MiB, every byte value (prepare passes a non-JSON body through)", [
        ("[method]engine.prepare", lambda e, b=b: (e, t.enc_route(PRIMARY), request(b)))
        for b in (b"", b"\x00", ALL_BYTES, ALL_BYTES * 17, bytes(range(251)) * (MIB // 251) + b"\xff" * (MIB % 251))
    ]),
    ("guest-driven call: the send import's tagged result, sleep-ms, emitted events", [
        ("[method]engine.call", lambda e: (e, request(b'{"model":"x","messages":[]}'))),
    ]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_compiled_calls_decode_as_wasmtime_py(case: tuple[str, list[tuple[str, Any]]]) -> None:
    (fast, fast_host), (slow, slow_host) = pair()
    assert all(isinstance(f, codec.Func) for f in fast._calls.values()), "every export compiles"
    fe, se = engine(fast), engine(slow)
    for name, args in case[1]:
        fast_host.clock.advance(60_000)
        slow_host.clock.advance(60_000)
        got, want = raw(fast, name, *args(fe)), raw(slow, name, *args(se))
        assert type(got) is type(want)
        assert got == want, name
    assert fast_host.events == slow_host.events, "host imports see the same arguments"
    assert fast_host.sent == slow_host.sent


def test_prepare_round_trips_every_body_size() -> None:
    (fast, _), _ = pair()
    e = engine(fast)
    for body in (b"", b"\x00", ALL_BYTES, bytes(reversed(ALL_BYTES)) * (MIB // 256)):
        out = fast.prepare(e, PRIMARY, Request(body=body))
        assert isinstance(out, Outbound) and out.body == body


def test_own_resource_results_and_errors() -> None:
    (fast, _), (slow, _) = pair()
    e = engine(fast)
    assert fast.select(e) == PRIMARY
    refused = fast.create("{}", None, [])
    assert refused == slow.create("{}", None, []) and refused[0] == "config"
    for _ in range(100):
        fast.drop(engine(fast))
    fast.drop(e)
    assert not fast.poisoned


def test_lower_then_lift_is_the_identity_for_every_shape() -> None:
    """Without the guest: each converter reads back what it wrote, from the arena and from a
    Rust-owned copy of it (`wasmtime_component_val_clone` walks the whole tree, so wasmtime
    accepts the layout), for the action record, the no-route record and the call arguments."""
    (fast, _), _ = pair()
    types = {name: f.type(fast._store) for name, f in fast._funcs.items()}
    action = t.enc_progress(CallProgress(1, 2, 3, [4]))
    route = t.enc_route(PRIMARY)
    classified = Record()
    for k, v in {"reason": "quota-exhausted", "retryable": False, "rotate-credential": True, "fall-back": True,
                 "retry-after-ms": (1 << 64) - 1, "rule": "r", "message": "ü" * 3}.items():
        setattr(classified, k, v)
    status = Record()
    for k, v in {"id": "k", "state": "cooling-down", "until-ms": 5, "last-reason": None, "last-error": ""}.items():
        setattr(status, k, v)
    provider = Record()
    for k, v in {"provider": "p", "model": "m", "position": 0, "route-until-ms": None, "credentials": [status, status],
                 "summary": "s"}.items():
        setattr(provider, k, v)
    error = Record()
    for k, v in {"reason": "unknown", "message": "m", "retry-at-ms": None, "providers": [provider]}.items():
        setattr(error, k, v)
    value = Record()
    for k, v in {"kind": "give-up", "route": route, "delay-ms": 0, "fresh-connection": True, "classified": classified,
                 "progress": action, "rule": "", "why": "w", "error": error}.items():
        setattr(value, k, v)
    shapes = [
        (types["[method]engine.on-failure"].result, value),
        (types["[method]engine.select"].result, Variant("err", Record.__new__(Record))),
        (types["classify"].params[1][1], failure(429, ALL_BYTES * 100, JSON * 3)),
        (types["classify"].params[1][1], t.enc_failure(TransportFailure(TransportKind.TLS, "x"))),
        (types["[method]engine.prepare"].params[2][1], request(b"\x01" * (codec._BULK + 1))),
        (types["merge"].result, "text"),
        (types["[static]engine.create"].params[1][1], None),
        (types["[static]engine.create"].params[1][1], "state"),
    ]
    no_route = Record()
    for k, v in {"message": "none", "earliest-ms": 7, "providers": [provider]}.items():
        setattr(no_route, k, v)
    shapes[1] = (shapes[1][0], Variant("err", no_route))
    for ty, v in shapes:
        c = codec.Compiler()
        lower, lift = c._compile(ty)
        arena = codec.Arena(64)
        mv, off, addr = arena.alloc(codec.VAL)
        lower(v, arena, mv, off)
        assert lift(addr) == v
        copy = ctypes.create_string_buffer(codec.VAL)
        codec._val_clone(addr, ctypes.addressof(copy))
        assert lift(ctypes.addressof(copy)) == v
        codec._val_delete(ctypes.addressof(copy))


def test_bad_arguments_are_refused_before_the_guest() -> None:
    (fast, _), _ = pair()
    e = engine(fast)
    bad = t.enc_failure(HttpResponse(429, JSON, QUOTA))
    bad.kind = "carrier-pigeon"
    with pytest.raises(ValueError, match="carrier-pigeon"):
        raw(fast, "[method]engine.on-failure", e, t.enc_route(PRIMARY), bad, None)
    negative = t.enc_route(PRIMARY)
    negative.position = -1
    with pytest.raises(ValueError, match="out of range"):
        raw(fast, "[method]engine.on-failure", e, negative, failure(), None)
    with pytest.raises(TypeError):
        raw(fast, "classify", 7, failure())
    assert not fast.poisoned and fast.select(e).position == 0


def test_an_exception_in_a_host_import_traps_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    (fast, _), _ = pair()
    e = engine(fast)
    monkeypatch.setattr(t, "enc_send_result", lambda result: "not a result")  # fails in the import's conversion
    with pytest.raises(comp.Trapped) as err:
        fast.call(e, Request(body=b"{}"))
    assert isinstance(err.value.__cause__.__cause__, TypeError)
    assert fast.poisoned


def test_uncompilable_functions_fall_back_to_wasmtime_py(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fty: Any) -> Any:
        raise codec.Unsupported("test")
    monkeypatch.setattr(codec, "compile_func", refuse)
    monkeypatch.setattr(comp, "_PLANS", {})
    host = Host()
    inst = comp.Instance(comp.compile_component(), host)
    assert not any(isinstance(f, codec.Func) for f in inst._calls.values())
    e = engine(inst)
    assert inst.select(e) == PRIMARY


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_no_leak_over_many_calls() -> None:
    (fast, host), _ = pair()
    e = engine(fast)
    body = ALL_BYTES * 40  # 10 KiB: more than the arena's first block

    def round_() -> None:
        host.clock.advance(3_600_000)
        fast.select(e)
        fast.on_failure(e, PRIMARY, HttpResponse(429, JSON, body), CallProgress(1, 2, 0, [1]))
        fast.prepare(e, PRIMARY, Request(body=body))
        fast.classify(PRIMARY.provider, TransportFailure(TransportKind.RESET, "reset"))
        fast.snapshot(e)
        fast.drop(fast.create(json.dumps(CHAIN), None, CREDS))
        host.events.clear()

    for _ in range(300):
        round_()
    before = rss_kib()
    for _ in range(3000):
        round_()
    grown = rss_kib() - before
    assert grown < 4096, f"RSS grew {grown} KiB over 3000 rounds of calls"
