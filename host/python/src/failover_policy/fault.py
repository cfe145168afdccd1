"""What a call gets when the policy itself failed (trapped, ran out of time or memory): a safe
default decision made by the host alone, mirroring the Rust host's `fault` module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .types import (
    Action,
    ActionKind,
    CallProgress,
    Classified,
    FinalError,
    HttpResponse,
    NoRoute,
    Reason,
    Route,
    Step,
    StepKind,
    TransportFailure,
    TransportKind,
)

FailMode = Literal["open", "closed"]

# The delay of fail-open's single retry.
FAIL_OPEN_DELAY_MS = 1000
# The rule on everything the host decides or reports for a failed policy.
FAULT_RULE = "host.policy-fault"


@dataclass(frozen=True)
class Supervision:
    """`fail_mode` 'open': a provider-side failure (408, 429, 5xx, timeout, reset, refused
    connection) is retried once on the same route after 1000 ms, anything else gives up;
    'closed': every call the policy failed in gives up, saying so. `max_crashes` faults within
    `crash_window_s` is a crash loop: fall back to the previous policy, or fail every call closed."""

    fail_mode: FailMode = "open"
    max_crashes: int = 3
    crash_window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.fail_mode not in ("open", "closed"):
            raise ValueError(f"fail_mode must be 'open' or 'closed', not {self.fail_mode!r}")


def final_error(why: str) -> FinalError:
    return FinalError(Reason.UNKNOWN, f"the failover policy failed ({why}); the host gave up on this call", None, [])


def give_up(why: str) -> Step:
    """The step that ends a driven call the policy failed in."""
    return Step(StepKind.GIVE_UP, None, 0, None, b"", final_error(why), [], None, FAULT_RULE, why)


def crash_loop_message(faults: int, window_s: float, why: str) -> str:
    """A crash loop ended by going back to the policy that ran before (`tests/hosts/host-messages.json`)."""
    return f"the policy failed {faults} times within {window_s:g} s (last: {why}); fell back to the previous policy"


def closed_message(faults: int, window_s: float, why: str) -> str:
    """A crash loop with nothing to go back to: every call fails closed."""
    return (f"the policy failed {faults} times within {window_s:g} s (last: {why}) and no previous policy could "
            "take over; every call fails closed until a new policy is swapped in")


def succeeded(status: int) -> bool:
    """Whether a response is an answer while the policy cannot say: its status is a 2xx."""
    return 200 <= status < 300


def no_route(why: str) -> NoRoute:
    return NoRoute(final_error(why).message, None, [])


def action(mode: FailMode, route: Route, failure: HttpResponse | TransportFailure,
           progress: CallProgress | None, why: str) -> Action:
    p = progress or CallProgress(0, 0, 0, [])
    retry = mode == "open" and _provider_side(failure) and p.route_retries == 0
    classified = Classified(Reason.UNKNOWN, retry, False, False, None, FAULT_RULE,
                            f"not classified: the policy failed ({why})")
    if retry:
        return Action(ActionKind.RETRY, route, FAIL_OPEN_DELAY_MS, True, classified,
                      CallProgress(p.attempts + 1, p.waited_ms + FAIL_OPEN_DELAY_MS, p.route_retries + 1,
                                   list(p.left_positions)),
                      f"{FAULT_RULE}.retry",
                      f"the policy failed ({why}); fail-open: one retry on the same route in {FAIL_OPEN_DELAY_MS} ms",
                      None)
    error = final_error(why)
    return Action(ActionKind.GIVE_UP, None, 0, False, classified,
                  CallProgress(p.attempts + 1, p.waited_ms, p.route_retries, list(p.left_positions)),
                  f"{FAULT_RULE}.give-up", error.message, error)


def _provider_side(failure: HttpResponse | TransportFailure) -> bool:
    if isinstance(failure, HttpResponse):
        return failure.status in (408, 429) or 500 <= failure.status <= 599
    return failure.kind in (TransportKind.TIMEOUT, TransportKind.RESET, TransportKind.CONNECTION_REFUSED)
