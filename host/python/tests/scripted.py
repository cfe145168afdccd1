"""The scripted provider of a scenario's `stream` steps (tests/scenarios/README.md), in virtual
time: a carrier for `failover_policy.drive.Drive`, the twin of the Rust harness's `script.rs`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from failover_policy.clock import VirtualClock
from failover_policy.types import CallInput, InputKind, Outbound, ResponseHead, Route, TransportFailure, TransportKind


def piece_bytes(piece: dict[str, Any]) -> bytes:
    """The bytes on the wire: `raw` as is, else an SSE event of `event` and `data` (JSON compact)."""
    if piece.get("raw") is not None:
        return piece["raw"].encode()
    out = f"event: {piece['event']}\n" if piece.get("event") is not None else ""
    data = piece.get("data")
    if data is not None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        out += f"data: {text}\n\n"
    elif piece.get("event") is not None:
        out += "\n"
    return out.encode()


def whole_body(answer: dict[str, Any]) -> bytes:
    if answer.get("stream") is not None:
        return b"".join(piece_bytes(p) * p.get("repeat", 1) for p in answer["stream"])
    body = answer.get("body")
    if body is None:
        return b""
    return (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)).encode()


class ScriptedBody:
    """Each piece after its delay, unless the read's time runs out first (the piece stays due)."""

    def __init__(self, pieces: list[dict[str, Any]], clock: VirtualClock) -> None:
        self._pieces, self._clock = pieces, clock

    def read(self, within_ms: int) -> CallInput:
        if not self._pieces:
            return CallInput(InputKind.END)
        piece = self._pieces[0]
        delay = piece.get("delay_ms", 0)
        if piece.get("stall") or delay > within_ms:
            self._clock.advance(within_ms)
            self._pieces[0] = {**piece, "delay_ms": max(0, delay - within_ms)}
            return CallInput(InputKind.TIMED_OUT)
        self._clock.advance(delay)
        self._pieces.pop(0)
        if piece.get("reset"):
            return CallInput(InputKind.FAILED, failure=TransportFailure(TransportKind.RESET, "scripted reset mid-body"))
        if piece.get("repeat", 1) > 1:
            self._pieces.insert(0, {**piece, "repeat": piece["repeat"] - 1})
        return CallInput(InputKind.DATA, data=piece_bytes(piece))

    def close(self) -> None:
        pass


class ScriptedCarrier:
    """`open` answers from the script (`next_response`) and records each send with `record`."""

    def __init__(self, next_response: Callable[[str, str], dict[str, Any]], clock: VirtualClock,
                 record: Callable[[Route, str, int], None], t: Callable[[], int]) -> None:
        self._next, self._clock, self._record, self._t = next_response, clock, record, t

    def open(self, out: Outbound, within_ms: int) -> tuple[CallInput, ScriptedBody | None]:
        t = self._t()
        r = self._next(out.route.provider, out.route.credential)
        body: ScriptedBody | None = None
        if "transport" in r:
            kind = r["transport"] if r["transport"] in {k.value for k in TransportKind} else "other"
            given = CallInput(InputKind.FAILED,
                              failure=TransportFailure(TransportKind(kind), r.get("message") or f"scripted {r['transport']}"))
            outcome = kind
        elif r.get("silent") or r.get("delay_ms", 0) >= within_ms:
            self._clock.advance(within_ms)
            given, outcome = CallInput(InputKind.TIMED_OUT), "timeout"
        else:
            self._clock.advance(r.get("delay_ms", 0))
            status = r.get("status", 200)
            head = ResponseHead(status, list(r.get("headers", {}).items()))
            pieces = [dict(p) for p in r["stream"]] if r.get("stream") is not None else \
                [{"raw": whole_body(r).decode("utf-8", "replace")}]
            given, body, outcome = CallInput(InputKind.HEAD, head=head), ScriptedBody(pieces, self._clock), str(status)
        self._record(out.route, outcome, t)
        return given, body

    def sleep(self, ms: int) -> None:
        self._clock.advance(ms)
