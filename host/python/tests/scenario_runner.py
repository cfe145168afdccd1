"""Replays tests/scenarios/*.json through the Python host (format: tests/scenarios/README.md).

Thin by design: it supplies the guest's imports (scripted `send`, a virtual clock, `emit` into the
trace, `seed`) and compares. Every decision comes from the guest. It carries out the steps in
`STEP_KINDS`; a `stream` step is a driven call carried out by the package's own `drive.Drive`
against the script in virtual time (`scripted.ScriptedCarrier`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripted import ScriptedCarrier

from failover_policy.clock import VirtualClock
from failover_policy.component import Instance, compile_component
from failover_policy.drive import Drive
from failover_policy.errors import FailoverError
from failover_policy.types import (
    CallFailure,
    CallInput,
    CallSuccess,
    CredentialInfo,
    Event,
    HttpResponse,
    NoRoute,
    Outbound,
    Request,
    Route,
    Step,
    TransportFailure,
    TransportKind,
)

OK_RESPONSE = {"status": 200, "headers": {"content-type": "application/json"},
               "body": {"id": "sim", "object": "chat.completion", "choices": [
                   {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}}
DEFAULT_BODY = {"model": "placeholder", "messages": [{"role": "user", "content": "hello"}]}
STEP_KINDS = ("advance_ms", "select", "call", "stream", "set_credentials", "script", "restart")
# What any step may carry besides its kind.
STEP_CHECKS = ("expect", "events", "no_events")


class UnsupportedStep(Exception):
    """A step kind this runner does not carry out."""


def unsupported_steps(sc: dict[str, Any]) -> list[str]:
    """The step kinds of scenario `sc` this runner does not carry out, sorted."""
    return sorted({key for step in sc["steps"] for key in step if key not in STEP_KINDS + STEP_CHECKS})


def compact(value: Any) -> str:
    """JSON as serde_json writes it (compact, insertion order, UTF-8)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    return (body if isinstance(body, str) else compact(body)).encode()


def label(route: Route) -> str:
    return f"{route.provider}/{route.model}#{route.credential}"


@dataclass
class Run:
    name: str
    start_ms: int
    seed: int
    scripts: dict[str, dict[str, Any]]
    clock: VirtualClock
    trace: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    step: int = 0
    step_events: list[Event] = field(default_factory=list)
    step_sends: list[tuple[Route, str]] = field(default_factory=list)

    def t(self) -> int:
        return self.clock.now_ms() - self.start_ms

    def line(self, type_: str, **fields: Any) -> None:
        self.trace.append({"t": self.t(), "step": self.step, "type": type_, **fields})

    def fail(self, what: str, message: str) -> None:
        self.failures.append(f"scenario `{self.name}` step {self.step} ({what}): {message}")

    # ---- the guest's imports ----

    def next_response(self, provider: str, credential: str) -> dict[str, Any]:
        keyed, plain = self.scripts.get(f"{provider}#{credential}", {}), self.scripts.get(provider, {})
        for s in (keyed, plain):
            if s.get("script"):
                return s["script"].pop(0)
        for s in (keyed, plain):
            if s.get("default") is not None:
                return s["default"]
        return OK_RESPONSE

    def send(self, out: Outbound) -> HttpResponse | TransportFailure:
        t = self.t()
        r = self.next_response(out.route.provider, out.route.credential)
        answer: HttpResponse | TransportFailure
        if "transport" in r:
            kind = r["transport"] if r["transport"] in {k.value for k in TransportKind} else "other"
            answer = TransportFailure(TransportKind(kind), r.get("message") or f"scripted {r['transport']}")
        elif r.get("delay_ms", 0) >= out.read_timeout_ms:
            self.clock.advance(out.read_timeout_ms)
            answer = TransportFailure(TransportKind.TIMEOUT,
                                      f"no response within the read timeout of {out.read_timeout_ms} ms")
        else:
            self.clock.advance(r.get("delay_ms", 0))
            answer = HttpResponse(r.get("status", 200), list(r.get("headers", {}).items()),
                                  body_bytes(r.get("body")))
        self.record_send(out.route, str(answer.status) if isinstance(answer, HttpResponse) else answer.kind.value, t)
        return answer

    def record_send(self, route: Route, outcome: str, t: int) -> None:
        self.trace.append({"t": t, "step": self.step, "type": "send", "route": label(route), "outcome": outcome})
        self.step_sends.append((route, outcome))

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def sleep_ms(self, ms: int) -> None:
        self.clock.advance(ms)

    def emit(self, e: Event) -> None:
        self.line("event", kind=e.kind.value, rule=e.rule, message=e.message)
        self.step_events.append(e)

    def seed_value(self) -> int:
        return self.seed


class _InstanceCall:
    """A driven call of a bare Instance, as `drive.Drive` takes it."""

    def __init__(self, inst: Instance, handle: Any) -> None:
        self._inst, self._handle = inst, handle

    def next(self, given: CallInput) -> Step:
        return self._inst.next(self._handle, given)

    def close(self) -> None:
        self._inst.drop(self._handle)


@dataclass
class Streamed:
    """What a `stream` step's caller saw: when the head came (ms since start), what it read, the outcome."""

    committed: int | None
    delivered: bytes
    got: CallSuccess | CallFailure


def _stream(run: Run, inst: Instance, engine: Any, spec: dict[str, Any]) -> Streamed:
    handle = inst.begin(engine, _request(spec.get("request")), spec.get("timeout_ms"))
    drive = Drive(_InstanceCall(inst, handle), ScriptedCarrier(run.next_response, run.clock, run.record_send, run.t))
    try:
        head = drive.commit()
    except FailoverError as exc:
        return Streamed(None, b"", CallFailure(exc.error, exc.attempts))
    committed = run.t()
    delivered = bytearray()
    try:
        for data in drive:
            delivered += data
    except FailoverError:
        pass  # a whole answer cut after its head: the outcome is in the drive
    if drive.error is not None or drive.route is None:
        return Streamed(committed, bytes(delivered), CallFailure(drive.error, drive.attempts))
    answer = HttpResponse(head.status, head.headers, bytes(delivered))
    return Streamed(committed, bytes(delivered), CallSuccess(answer, drive.route, drive.attempts))


def _streamed_expect(expect: dict[str, Any], streamed: Streamed) -> list[str]:
    diffs = []
    if "committed" in expect and expect["committed"] != (streamed.committed is not None):
        diffs.append(f"committed: expected {expect['committed']}, got {streamed.committed is not None}")
    text = streamed.delivered.decode("utf-8", "replace")
    diffs += [f"delivered text does not contain `{w}`: {text}" for w in expect.get("delivered_contains", []) if w not in text]
    diffs += [f"delivered text holds `{w}`: {text}" for w in expect.get("delivered_excludes", []) if w in text]
    return diffs


def _result(got: CallSuccess | CallFailure) -> dict[str, Any]:
    if isinstance(got, CallSuccess):
        return {"ok": True, "route": label(got.route), "attempts": _attempts(got.attempts)}
    return {"ok": False, "reason": got.error.reason.value, "message": got.error.message, "attempts": _attempts(got.attempts)}


class _Imports:
    """Adapts Run to the HostImports protocol (`seed` is a method there, a number in Run)."""

    def __init__(self, run: Run) -> None:
        self.send, self.now_ms, self.sleep_ms, self.emit = run.send, run.now_ms, run.sleep_ms, run.emit
        self.seed = run.seed_value


def _request(spec: dict[str, Any] | None) -> Request:
    spec = spec or {}
    body = spec.get("body")
    return Request(path=spec.get("path", "/chat/completions"), method=spec.get("method", "POST"),
                   headers=list(spec.get("headers", {}).items()),
                   body=body_bytes(DEFAULT_BODY if body is None else body))


def _partial(name: str, want: dict[str, Any], route: Route) -> list[str]:
    return [f"{name}.{k}: expected {v!r}, got {getattr(route, k)!r}"
            for k, v in want.items() if getattr(route, k) != v]


def _attempts(attempts: list[Any]) -> list[dict[str, Any]]:
    return [{"route": label(a.route), "outcome": a.outcome,
             "reason": a.classified.reason.value if a.classified else None,
             "action": a.action.kind.value if a.action else None,
             "rule": a.action.rule if a.action else None,
             "delay_ms": a.action.delay_ms if a.action else None} for a in attempts]


def run_scenario(path: Path, wasm: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(trace, failed expectations) of one scenario file, through `wasm` (default: the packaged
    policy). Raises UnsupportedStep, before running anything, for a step it does not carry out."""
    sc = json.loads(path.read_text())
    unsupported = unsupported_steps(sc)
    if unsupported:
        raise UnsupportedStep(f"scenario {sc['name']} has steps this runner does not carry out: {unsupported}")
    start = sc.get("start_ms", 1795528800000)
    clock = VirtualClock(start)
    run = Run(sc["name"], start, sc.get("seed", 1), json.loads(json.dumps(sc.get("providers", {}))), clock)
    inst = Instance(compile_component(wasm), _Imports(run))
    config = compact(sc["config"])
    if sc.get("credentials") is not None:
        creds = [CredentialInfo(c["id"], c["fingerprint"]) for c in sc["credentials"]]
    else:
        creds = [CredentialInfo(c["id"], f"fp-{c['id']}") for p in sc["config"].get("providers", {}).values()
                 for c in p.get("credentials", [])]
    state = sc.get("state")
    state = None if state is None else state if isinstance(state, str) else compact(state)

    def create(state: str | None) -> Any:
        made = inst.create(config, state, creds)
        if isinstance(made, tuple):
            run.fail("create engine", f"{made[0]}: {made[1]}")
            return None
        return made

    engine = create(state)
    for i, step in enumerate(sc["steps"]):
        if engine is None:
            break
        if i > 0:  # step 0 also owns the events of the first create, as in the Rust harness
            run.step, run.step_events, run.step_sends = i, [], []
        started = clock.now_ms()
        expect = step.get("expect", {})
        what = next((k for k in ("call", "stream", "select") if k in step), "step")
        diffs: list[str] = []
        if "advance_ms" in step:
            clock.advance(step["advance_ms"])
            run.line("advance")
        elif "select" in step:
            got = inst.select(engine)
            if isinstance(got, NoRoute):
                run.line("select", no_route=got.message)
                if "route" in expect:
                    diffs.append(f"expected a route, got no route: {got.message}")
                diffs += [f"no-route message lacks {c!r}: {got.message}" for c in expect.get("contains", [])
                          if c not in got.message]
            else:
                run.line("select", route=label(got))
                if expect.get("no_route"):
                    diffs.append(f"expected no route, got {label(got)}")
                diffs += _partial("route", expect.get("route", {}), got)
        elif "call" in step:
            got = inst.call(engine, _request(step["call"].get("request")))
            run.line("result", **_result(got))
            diffs += _call_expect(expect, got, run.step_sends, clock.now_ms() - started)
        elif "stream" in step:
            streamed = _stream(run, inst, engine, step["stream"])
            run.line("result", **_result(streamed.got), committed_t=streamed.committed,
                     delivered=streamed.delivered.decode("utf-8", "replace"))
            diffs += _call_expect(expect, streamed.got, run.step_sends, clock.now_ms() - started)
            diffs += _streamed_expect(expect, streamed)
        elif "set_credentials" in step:
            creds = [CredentialInfo(c["id"], c["fingerprint"]) for c in step["set_credentials"]]
            inst.set_credentials(engine, creds)
            run.line("set_credentials")
        elif "script" in step:
            run.scripts.update(json.loads(json.dumps(step["script"])))
            run.line("script")
        elif "restart" in step:
            snap = inst.snapshot(engine)
            inst.drop(engine)
            run.line("restart")
            engine = create(snap)
        if what not in ("call", "stream"):
            diffs += _elapsed(expect, clock.now_ms() - started)
        for want in step.get("events", []):
            if not any((not want.get("kind") or e.kind.value == want["kind"])
                       and want.get("contains", "") in e.message for e in run.step_events):
                diffs.append(f"no event matching {want}; got {[(e.kind.value, e.message) for e in run.step_events]}")
        for kind in step.get("no_events", []):
            diffs += [f"unexpected {kind} event: {e.message}" for e in run.step_events if e.kind.value == kind]
        for d in diffs:
            run.fail(what, d)
    return run.trace, run.failures


def _elapsed(expect: dict[str, Any], elapsed: int) -> list[str]:
    out = []
    if "elapsed_ms" in expect and elapsed != expect["elapsed_ms"]:
        out.append(f"elapsed_ms: expected {expect['elapsed_ms']}, got {elapsed}")
    if "elapsed_ms_max" in expect and elapsed > expect["elapsed_ms_max"]:
        out.append(f"elapsed_ms_max: expected at most {expect['elapsed_ms_max']}, got {elapsed}")
    return out


def _call_expect(expect: dict[str, Any], got: Any, sends: list[tuple[Route, str]], elapsed: int) -> list[str]:
    diffs = _elapsed(expect, elapsed)
    ok = isinstance(got, CallSuccess)
    if "ok" in expect and expect["ok"] != ok:
        detail = "" if ok else f": {got.error.message}"
        diffs.append(f"ok: expected {expect['ok']}, got {ok}{detail}")
    if "route" in expect:
        if ok:
            diffs += _partial("route", expect["route"], got.route)
        else:
            diffs.append("route: expected an answering route, the call failed")
    if "attempts" in expect and len(got.attempts) != expect["attempts"]:
        diffs.append(f"attempts: expected {expect['attempts']}, got {len(got.attempts)}")
    if not ok:
        if "reason" in expect and got.error.reason.value != expect["reason"]:
            diffs.append(f"reason: expected {expect['reason']}, got {got.error.reason.value}")
        diffs += [f"final error lacks {c!r}: {got.error.message}" for c in expect.get("contains", [])
                  if c not in got.error.message]
    elif "reason" in expect or "contains" in expect:
        diffs.append("expected a failed call, it succeeded")
    if "sends" in expect:
        want = expect["sends"]
        if len(want) != len(sends):
            diffs.append(f"sends: expected {len(want)}, got {[(label(r), o) for r, o in sends]}")
        for n, (w, (route, outcome)) in enumerate(zip(want, sends, strict=False)):
            diffs += [f"sends[{n}].{k}: expected {v!r}, got {(outcome if k == 'outcome' else getattr(route, k))!r}"
                      for k, v in w.items() if (outcome if k == "outcome" else getattr(route, k)) != v]
    for target in expect.get("not_sent", []):
        hit = [label(r) for r, _ in sends if target in (r.provider, f"{r.provider}#{r.credential}")]
        if hit:
            diffs.append(f"not_sent: {target} was sent {hit}")
    return diffs
