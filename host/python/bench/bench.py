"""Per-call latency of the policy from Python (wasmtime-py), load and swap time, memory after
100 swaps. Prints the table format of the Rust benches; `--json FILE` also writes the rows
for scripts/bench.sh.

Decisions are timed through the public `Policy` (what users call) and, for select and
on-failure, through the bare `component.Instance` too: the difference is what the package adds
(the snapshot after a state change, events to `logging`, decoding into dataclasses). The bare
Instance is timed twice: with the package's compiled calls (`codec`, what `Policy` uses) and
with wasmtime-py's generic `Func.__call__` (`compiled=False`), which re-reads the function's
type on every call and converts a `list<u8>` byte by byte.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import wasmtime

from failover_policy import Policy, Request, Route, VirtualClock
from failover_policy import component as comp
from failover_policy.types import CredentialInfo, HttpResponse, TransportFailure, TransportKind

ROOT = Path(__file__).resolve().parents[3]
HOUR_MS = 3_600_000
CHAIN = {
    "providers": {
        "openai": {"base_url": "https://o.example/v1", "credentials": [{"id": "oa-1"}, {"id": "oa-2"}]},
        "anthropic": {"base_url": "https://a.example/v1", "credentials": [{"id": "an-1"}]},
    },
    "primary": {"provider": "openai", "model": "gpt-4o"},
    "fallback_providers": [{"provider": "anthropic", "model": "claude-sonnet"}],
    "seed": 3,
}
SECRETS = {"oa-1": "sk-1", "oa-2": "sk-2", "an-1": "sk-3"}
JSON = [("content-type", "application/json")]
RATE_429 = b'{"error":{"message":"Rate limit reached for requests per min","type":"requests","code":"rate_limit_exceeded"}}'
OVERLOADED_503 = b'{"error":{"message":"The server is overloaded, please try again later","type":"server_error"}}'
QUOTA_429 = b'{"error":{"message":"usage allocated quota exceeded.","type":"insufficient_quota","code":"quota_exceeded"}}'
PRIMARY = Route("openai", "gpt-4o", "oa-1", 0)
REQUEST = Request(body=b'{"model":"x","messages":[{"role":"user","content":"hi"}]}')


def measure(fn: Callable[[], Any], budget_s: float) -> tuple[float, float, float, int]:
    """(median, p10, p90) in ns per call over batches of about 1 ms, and the calls made."""
    fn()
    t0 = time.perf_counter_ns()
    fn()
    batch = max(1, int(1_000_000 / max(1, time.perf_counter_ns() - t0)))
    samples, calls, end = [], 0, time.perf_counter() + budget_s
    while time.perf_counter() < end or len(samples) < 5:
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - t0) / batch)
        calls += batch
    q = statistics.quantiles(samples, n=10)
    return statistics.median(samples), q[0], q[-1], calls


def fmt(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def unique_wasm(base: bytes, n: int) -> bytes:
    """The same component with a custom section appended: new bytes, so nothing is cached."""
    payload = bytes([len(b"bench")]) + b"bench" + n.to_bytes(8, "little")
    return base + b"\x00" + bytes([len(payload)]) + payload


def fake_provider() -> httpx.MockTransport:
    """In memory: every other request is a 429, the rest a 200."""
    state = {"next_429": False}

    def answer(_req: httpx.Request) -> httpx.Response:
        state["next_429"] = not state["next_429"]
        if state["next_429"]:
            return httpx.Response(429, headers=dict(JSON), content=RATE_429)
        return httpx.Response(200, json={"choices": []})
    return httpx.MockTransport(answer)


def corpus() -> list[tuple[str, HttpResponse | TransportFailure]]:
    import base64
    cases = []
    for file in sorted((ROOT / "tests/corpus").glob("*.jsonl")):
        for line in file.read_text().splitlines():
            if not line.strip():
                continue
            c = json.loads(line)
            if "transport" in c:
                cases.append((c["provider"], TransportFailure(TransportKind(c["transport"]), c.get("message", ""))))
                continue
            body = c.get("body")
            raw = (base64.b64decode(c["body_base64"]) if "body_base64" in c else b"" if body is None
                   else body.encode() if isinstance(body, str) else json.dumps(body).encode())
            cases.append((c["provider"], HttpResponse(c["status"], list((c.get("headers") or {}).items()), raw)))
    return cases


def pool_config(keys: int) -> dict[str, Any]:
    creds = [{"id": f"k{i}"} for i in range(keys)]
    return {"providers": {"openai": {"base_url": "https://o.example/v1", "credentials": creds}},
            "primary": {"provider": "openai", "model": "gpt-4o"}, "seed": 3}


class BareHost:
    """Host imports for a bare Instance on a virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def send(self, out: Any) -> HttpResponse:
        return HttpResponse(200, JSON, b'{"choices":[]}')

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def sleep_ms(self, ms: int) -> None:
        self.clock.advance(ms)

    def emit(self, event: Any) -> None:
        pass

    def seed(self) -> int:
        return 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per operation")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []

    def row(op: str, fn: Callable[[], Any], budget: float = args.budget) -> None:
        med, p10, p90, n = measure(fn, budget)
        rows.append({"operation": op, "median_ns": med, "p10_ns": p10, "p90_ns": p90, "iterations": n})

    def once(op: str, fn: Callable[[], Any], repeat: int) -> None:
        """Slow operations: one timing per call."""
        times = []
        for i in range(repeat):
            t0 = time.perf_counter_ns()
            fn(i)
            times.append(time.perf_counter_ns() - t0)
        q = statistics.quantiles(times, n=10)
        rows.append({"operation": op, "median_ns": statistics.median(times), "p10_ns": q[0], "p90_ns": q[-1],
                     "iterations": repeat})

    clock = VirtualClock()
    policy = Policy.load(CHAIN, secrets=SECRETS, clock=clock, transport=fake_provider())
    cases = corpus()
    it = iter(range(1 << 62))

    def classify() -> Any:
        provider, f = cases[next(it) % len(cases)]
        if isinstance(f, TransportFailure):
            return policy.classify(provider, transport=f.kind, message=f.message)
        return policy.classify(provider, f.status, f.headers, f.body)
    row("classify", classify)
    row("select", policy.select)

    # 503s spend the retry budget and only successes refill it: the backoff row's policy has a
    # budget no run exhausts, so every timed decision is a backoff (checked after the run).
    unspent = Policy.load({**CHAIN, "retry_budget": {"max_tokens": 1_000_000, "threshold": 0}},
                          secrets=SECRETS, clock=clock, transport=fake_provider())

    def on_failure(p: Policy, body: bytes, status: int) -> Callable[[], Any]:
        def fn() -> Any:
            clock.advance(HOUR_MS)
            return p.on_failure(PRIMARY, status, JSON, body)
        return fn
    for p, body, status, kind in ((policy, RATE_429, 429, "rotate"), (unspent, OVERLOADED_503, 503, "retry")):
        name = f"on-failure-{status}-{'rotate' if status == 429 else 'backoff'}"
        row(name, on_failure(p, body, status))
        assert on_failure(p, body, status)().kind.value == kind, f"{name} no longer decides {kind}"

    def call() -> Any:
        clock.advance(HOUR_MS)
        ok = policy.call(REQUEST)
        assert len(ok.attempts) == 2
        return ok
    row("call-429-then-200", call)

    # The bare Instance: what the decisions cost without the package's per-call extras, through
    # the compiled calls and through wasmtime-py's generic ones.
    creds = [CredentialInfo(i, f"fp-{i}") for i in SECRETS]
    rate = HttpResponse(429, JSON, RATE_429)
    generic = comp.Instance(comp.compile_component(), BareHost(clock), compiled=False)
    inst = comp.Instance(comp.compile_component(), BareHost(clock))
    for label, i in (("", inst), (", wasmtime-py calls", generic)):
        eng = i.create(json.dumps(CHAIN), None, creds)
        row(f"select (bare Instance{label})", lambda i=i, eng=eng: i.select(eng))
        row(f"on-failure-429 (bare Instance{label})",
            lambda i=i, eng=eng: (clock.advance(HOUR_MS), i.on_failure(eng, PRIMARY, rate, None)))
        row(f"snapshot (bare Instance{label}, 3 keys)", lambda i=i, eng=eng: i.snapshot(eng))
        big = HttpResponse(429, JSON, RATE_429 + b" " * (10240 - len(RATE_429)))
        row(f"on-failure-429, 10 KiB body (bare Instance{label})",
            lambda i=i, eng=eng, big=big: (clock.advance(HOUR_MS), i.on_failure(eng, PRIMARY, big, None)))

    for keys in (1, 10, 1000):
        cfg = json.dumps(pool_config(keys))
        kc = [CredentialInfo(f"k{i}", f"fp-k{i}") for i in range(keys)]
        e = inst.create(cfg, None, kc)
        quota = HttpResponse(429, JSON, QUOTA_429)
        for c in kc:
            inst.on_failure(e, Route("openai", "gpt-4o", c.id, 0), quota, None)
        snap = inst.snapshot(e)
        row(f"snapshot-{keys}-keys", lambda e=e: inst.snapshot(e))

        def restore(cfg: str = cfg, snap: str = snap, kc: list[CredentialInfo] = kc) -> None:
            inst.drop(inst.create(cfg, snap, kc))
        row(f"restore-{keys}-keys", restore)
        inst.drop(e)

    base = comp.default_wasm()
    engine = comp._ENGINE
    once("load: compile .wasm (Component)", lambda i: wasmtime.component.Component(engine, unique_wasm(base, i)), 5)
    artifact = comp.compile_component().serialize()
    row("load: precompiled artifact (deserialize)",
        lambda: wasmtime.component.Component.deserialize(engine, artifact), min(args.budget, 0.5))
    row("instantiate (Instance: linker + instantiate + exports)",
        lambda: comp.Instance(comp.compile_component(), BareHost(clock)), min(args.budget, 0.5))

    def swap_new(i: int) -> None:
        policy.swap(unique_wasm(base, 1000 + i))
        policy.select()
    once("swap to first decision: new .wasm", swap_new, 5)
    alt = unique_wasm(base, 1)
    comp.compile_component(alt)
    flip = iter(range(1 << 62))
    row("swap to first decision: cached", lambda: (policy.swap(alt if next(flip) % 2 else base), policy.select()),
        min(args.budget, 0.5))

    before = rss_kib()
    for i in range(100):
        policy.swap(alt if i % 2 else base)
        policy.select()
    after_cached = rss_kib()
    for i in range(10):
        policy.swap(unique_wasm(base, 5000 + i))
    after_unique = rss_kib()
    memory = {"rss_before_kib": before, "rss_after_100_swaps_kib": after_cached,
              "rss_after_10_more_new_wasm_kib": after_unique}

    print("| operation | median | p10–p90 | iterations |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['operation']} | {fmt(r['median_ns'])} | {fmt(r['p10_ns'])}–{fmt(r['p90_ns'])} | {r['iterations']} |")
    print(f"\nRSS: {before} KiB before, {after_cached} KiB after 100 swaps between two cached builds, "
          f"{after_unique} KiB after 10 more swaps to never-seen builds")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "memory": memory}, indent=1))


if __name__ == "__main__":
    main()
