"""Python shapes of the WIT contract (wit/policy.wit), and their one encoder/decoder.

wasmtime-py returns records as objects with kebab-case attributes, enums as strings, options as
the value or None, and a `result` as a tagged `Variant` only when both arms decode to the same
Python class (else the bare payload). Every conversion between those and the dataclasses below
happens here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from wasmtime.component import Record, Variant

U16 = (1 << 16) - 1
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


class Reason(str, Enum):
    AUTH = "auth"
    AUTH_PERMANENT = "auth-permanent"
    BILLING = "billing"
    RATE_LIMIT = "rate-limit"
    QUOTA_EXHAUSTED = "quota-exhausted"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server-error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    CONTEXT_OVERFLOW = "context-overflow"
    MODEL_NOT_FOUND = "model-not-found"
    CONTENT_FILTER = "content-filter"
    BAD_REQUEST = "bad-request"
    UNKNOWN = "unknown"


class TransportKind(str, Enum):
    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection-refused"
    DNS = "dns"
    TLS = "tls"
    RESET = "reset"
    OTHER = "other"


class ActionKind(str, Enum):
    RETRY = "retry"
    ROTATE = "rotate"
    FALL_BACK = "fall-back"
    WAIT = "wait"
    GIVE_UP = "give-up"


class CredentialState(str, Enum):
    AVAILABLE = "available"
    SUSPECT = "suspect"
    COOLING_DOWN = "cooling-down"
    DEAD = "dead"
    MISSING = "missing"


class EventKind(str, Enum):
    NOTICE = "notice"
    FALLBACK_ACTIVATED = "fallback-activated"
    PRIMARY_RESTORED = "primary-restored"
    CREDENTIAL_COOLDOWN = "credential-cooldown"
    CREDENTIAL_DEAD = "credential-dead"
    CREDENTIAL_RESTORED = "credential-restored"
    ROUTE_COOLDOWN = "route-cooldown"
    RETRY_SCHEDULED = "retry-scheduled"
    GAVE_UP = "gave-up"
    CIRCUIT_OPENED = "circuit-opened"
    CIRCUIT_HALF_OPEN = "circuit-half-open"
    CIRCUIT_CLOSED = "circuit-closed"
    RETRY_BUDGET_EXHAUSTED = "retry-budget-exhausted"
    STATE_RESTORED = "state-restored"
    STATE_DROPPED = "state-dropped"
    # Contract 0.2.0: what became of a committed stream.
    STREAM_EVENT_DROPPED = "stream-event-dropped"
    STREAM_RESUMED = "stream-resumed"
    STREAM_FAILED = "stream-failed"


Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Route:
    provider: str
    model: str
    credential: str
    position: int

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}#{self.credential}"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True)
class TransportFailure:
    kind: TransportKind
    message: str


@dataclass(frozen=True)
class Classified:
    reason: Reason
    retryable: bool
    rotate_credential: bool
    fall_back: bool
    retry_after_ms: int | None
    rule: str
    message: str


@dataclass(frozen=True)
class CredentialStatus:
    id: str
    state: CredentialState
    until_ms: int | None
    last_reason: Reason | None
    last_error: str | None


@dataclass(frozen=True)
class ProviderStatus:
    provider: str
    model: str
    position: int
    route_until_ms: int | None
    credentials: list[CredentialStatus]
    summary: str


@dataclass(frozen=True)
class NoRoute:
    message: str
    earliest_ms: int | None
    providers: list[ProviderStatus]


@dataclass(frozen=True)
class CallProgress:
    attempts: int
    waited_ms: int
    route_retries: int
    left_positions: list[int]


@dataclass(frozen=True)
class FinalError:
    reason: Reason
    message: str
    retry_at_ms: int | None
    providers: list[ProviderStatus]


@dataclass(frozen=True)
class Start:
    """How a host-driven call starts: send on `route` after `delay_ms` (0 = now); pass
    `progress` to the call's first `on_failure` (its `waited_ms` already counts the delay)."""

    route: Route
    delay_ms: int
    progress: CallProgress
    rule: str
    why: str


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    route: Route | None
    delay_ms: int
    fresh_connection: bool
    classified: Classified
    progress: CallProgress
    rule: str
    why: str
    error: FinalError | None


@dataclass(frozen=True)
class Event:
    kind: EventKind
    at_ms: int
    route: Route | None
    rule: str
    message: str


@dataclass(frozen=True)
class Request:
    """An OpenAI-compatible request: `path` under the provider's base URL, JSON `body`."""

    path: str = "/chat/completions"
    method: str = "POST"
    headers: Headers = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class Outbound:
    route: Route
    url: str
    method: str
    headers: Headers
    body: bytes
    secret_header: str
    secret_prefix: str
    connect_timeout_ms: int
    read_timeout_ms: int
    fresh_connection: bool


@dataclass(frozen=True)
class CredentialInfo:
    id: str
    fingerprint: str


@dataclass(frozen=True)
class Attempt:
    route: Route
    at_ms: int
    outcome: str
    classified: Classified | None
    action: Action | None


@dataclass(frozen=True)
class CallSuccess:
    response: HttpResponse
    route: Route
    attempts: list[Attempt]


@dataclass(frozen=True)
class CallFailure:
    error: FinalError
    attempts: list[Attempt]


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    findings: list[str]


# ---- a fleet's shared state (contract 0.3.0) ----

@dataclass(frozen=True)
class UnreadableState:
    """One of `fold`'s states it could not read: its `index` in the list, why, and whether a newer
    policy wrote it (then a store keeps it for that policy instead of setting it aside)."""
    index: int
    message: str
    newer: bool


@dataclass(frozen=True)
class Delta:
    """`changes`' result: `state`, a snapshot to append, and `keep_until_ms`, the latest cooldown
    or open-circuit end in the appender's whole state (0 when none, and from a 0.1/0.2 policy,
    which cannot say): a store keeps what it appends at least until then."""
    state: str
    keep_until_ms: int


@dataclass(frozen=True)
class Folded:
    """`fold`'s result: the readable states merged (None when none was), the latest cooldown or
    open-circuit end in it (`keep_until_ms`, 0 when none or from a 0.1/0.2 policy: a store keeps
    the folded state at least until then), what it could not read, and how many credential and
    route records it forgot. Fields in the order of the WIT record `folded`."""
    state: str | None
    keep_until_ms: int
    unreadable: list[UnreadableState]
    forgotten: int


# ---- the driven call (contract 0.2.0) ----

class StepKind(str, Enum):
    SEND = "send"
    READ = "read"
    SLEEP = "sleep"
    DONE = "done"
    GIVE_UP = "give-up"


class InputKind(str, Enum):
    START = "start"
    HEAD = "head"
    DATA = "data"
    END = "end"
    TIMED_OUT = "timed-out"
    FAILED = "failed"
    SLEPT = "slept"


@dataclass(frozen=True)
class ResponseHead:
    status: int
    headers: Headers


@dataclass(frozen=True)
class CallInput:
    """What came of the last step: `head` after a send, `data` (never empty) after a read,
    `failure` after a transport error."""

    kind: InputKind
    head: ResponseHead | None = None
    data: bytes = b""
    failure: TransportFailure | None = None


@dataclass(frozen=True)
class Step:
    """What to do next in a driven call (wit/policy.wit `step`)."""

    kind: StepKind
    outbound: Outbound | None
    within_ms: int
    commit: ResponseHead | None
    deliver: bytes
    error: FinalError | None
    attempts: list[Attempt]
    route: Route | None
    rule: str
    why: str


# ---- checks: wasmtime-py does not range-check integers, so a bad one would wrap silently ----

def check_int(name: str, value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an integer in 0..={maximum}, got {value!r}")
    return value


def check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


# ---- encoding (Python -> WIT) ----

def _record(**fields: Any) -> Record:
    rec = Record()
    for name, value in fields.items():
        setattr(rec, name.replace("_", "-"), value)
    return rec


def _headers(headers: Headers) -> list[Record]:
    return [_record(name=check_str("header name", n), value=check_str("header value", v))
            for n, v in headers]


def enc_route(route: Route) -> Record:
    return _record(provider=check_str("route.provider", route.provider),
                   model=check_str("route.model", route.model),
                   credential=check_str("route.credential", route.credential),
                   position=check_int("route.position", route.position, U32))


def enc_http_response(resp: HttpResponse) -> Record:
    return _record(status=check_int("status", resp.status, U16), headers=_headers(resp.headers),
                   body=bytes(resp.body))


def enc_transport_failure(t: TransportFailure) -> Record:
    return _record(kind=TransportKind(t.kind).value, message=check_str("message", t.message))


def enc_failure(failure: HttpResponse | TransportFailure) -> Record:
    if isinstance(failure, HttpResponse):
        return _record(kind="http", response=enc_http_response(failure), transport=None)
    return _record(kind="transport", response=None, transport=enc_transport_failure(failure))


def enc_send_result(result: HttpResponse | TransportFailure) -> Variant:
    # Both arms are records, so wasmtime-py wants the tagged form.
    if isinstance(result, HttpResponse):
        return Variant("ok", enc_http_response(result))
    return Variant("err", enc_transport_failure(result))


def enc_progress(p: CallProgress | None) -> Record | None:
    if p is None:
        return None
    return _record(attempts=check_int("progress.attempts", p.attempts, U32),
                   waited_ms=check_int("progress.waited_ms", p.waited_ms, U64),
                   route_retries=check_int("progress.route_retries", p.route_retries, U32),
                   left_positions=[check_int("progress.left_positions", x, U32)
                                   for x in p.left_positions])


def enc_request(r: Request) -> Record:
    return _record(path=check_str("request.path", r.path), method=check_str("request.method", r.method),
                   headers=_headers(r.headers), body=bytes(r.body))


def enc_credentials(creds: list[CredentialInfo]) -> list[Record]:
    return [_record(id=check_str("credential id", c.id),
                    fingerprint=check_str("fingerprint", c.fingerprint)) for c in creds]


def enc_call_options(timeout_ms: int | None) -> Record:
    return _record(timeout_ms=None if timeout_ms is None else check_int("timeout_ms", timeout_ms, U64))


def enc_call_input(i: CallInput) -> Record:
    head = None if i.head is None else _record(status=check_int("status", i.head.status, U16),
                                                   headers=_headers(i.head.headers))
    return _record(kind=InputKind(i.kind).value, head=head, data=bytes(i.data),
                   failure=_opt(i.failure, enc_transport_failure))


# ---- decoding (WIT -> Python) ----

def _get(rec: Any, name: str) -> Any:
    return getattr(rec, name.replace("_", "-"))


def _opt(value: Any, dec: Any) -> Any:
    return None if value is None else dec(value)


def dec_headers(hs: list[Any]) -> Headers:
    return [(h.name, h.value) for h in hs]


def dec_route(r: Any) -> Route:
    return Route(r.provider, r.model, r.credential, r.position)


def dec_http_response(r: Any) -> HttpResponse:
    return HttpResponse(r.status, dec_headers(r.headers), bytes(r.body))


def dec_classified(c: Any) -> Classified:
    return Classified(Reason(c.reason), c.retryable, _get(c, "rotate_credential"), _get(c, "fall_back"),
                      _get(c, "retry_after_ms"), c.rule, c.message)


def dec_credential_status(c: Any) -> CredentialStatus:
    return CredentialStatus(c.id, CredentialState(c.state), _get(c, "until_ms"),
                            _opt(_get(c, "last_reason"), Reason), _get(c, "last_error"))


def dec_provider_status(p: Any) -> ProviderStatus:
    return ProviderStatus(p.provider, p.model, p.position, _get(p, "route_until_ms"),
                          [dec_credential_status(c) for c in p.credentials], p.summary)


def dec_no_route(n: Any) -> NoRoute:
    return NoRoute(n.message, _get(n, "earliest_ms"), [dec_provider_status(p) for p in n.providers])


def dec_progress(p: Any) -> CallProgress:
    return CallProgress(p.attempts, _get(p, "waited_ms"), _get(p, "route_retries"),
                        list(_get(p, "left_positions")))


def dec_final_error(e: Any) -> FinalError:
    return FinalError(Reason(e.reason), e.message, _get(e, "retry_at_ms"),
                      [dec_provider_status(p) for p in e.providers])


def dec_start(s: Any) -> Start:
    return Start(dec_route(s.route), _get(s, "delay_ms"), dec_progress(s.progress), s.rule, s.why)


def dec_action(a: Any) -> Action:
    return Action(ActionKind(a.kind), _opt(a.route, dec_route), _get(a, "delay_ms"),
                  _get(a, "fresh_connection"), dec_classified(a.classified), dec_progress(a.progress),
                  a.rule, a.why, _opt(a.error, dec_final_error))


def dec_event(e: Any) -> Event:
    return Event(EventKind(e.kind), _get(e, "at_ms"), _opt(e.route, dec_route), e.rule, e.message)


def dec_outbound(o: Any) -> Outbound:
    return Outbound(dec_route(o.route), o.url, o.method, dec_headers(o.headers), bytes(o.body),
                    _get(o, "secret_header"), _get(o, "secret_prefix"), _get(o, "connect_timeout_ms"),
                    _get(o, "read_timeout_ms"), _get(o, "fresh_connection"))


def dec_attempt(a: Any) -> Attempt:
    return Attempt(dec_route(a.route), _get(a, "at_ms"), a.outcome, _opt(a.classified, dec_classified),
                   _opt(a.action, dec_action))


def dec_step(s: Any) -> Step:
    commit = _opt(s.commit, lambda h: ResponseHead(h.status, dec_headers(h.headers)))
    return Step(StepKind(s.kind), _opt(s.outbound, dec_outbound), _get(s, "within_ms"), commit, bytes(s.deliver),
                _opt(s.error, dec_final_error), [dec_attempt(a) for a in s.attempts], _opt(s.route, dec_route),
                s.rule, s.why)


def dec_check_report(c: Any) -> CheckReport:
    return CheckReport(c.ok, list(c.findings))


def dec_delta(d: Any) -> Delta:
    return Delta(d.state, _get(d, "keep_until_ms"))


def dec_folded(f: Any) -> Folded:
    return Folded(f.state, _get(f, "keep_until_ms"), [UnreadableState(u.index, u.message, u.newer) for u in f.unreadable],
                  f.forgotten)


def split_result(value: Any, ok_type: type | tuple[type, ...] | None = None) -> tuple[bool, Any]:
    """(is_ok, payload) of a WIT `result`, tagged (`Variant`) or not (then `ok_type` tells)."""
    if isinstance(value, Variant):
        return value.tag == "ok", value.payload
    if ok_type is None:
        raise TypeError(f"untagged result {value!r} with no ok type to tell the arms apart")
    return isinstance(value, ok_type), value
