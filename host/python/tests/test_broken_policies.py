"""Misbehaving policies from tests/policies/broken carried into the Python host: a policy that
refuses the current snapshot is rejected with the old one kept; one that traps, loops or allocates
without bound is contained (process alive, state intact, a `host.policy-fault` notice, a safe
default decision), and a crash loop falls back to the previous policy or fails closed."""

import json

import pytest
from conftest import SECRETS, broken, fallback_config

from failover_policy import (
    ActionKind,
    EventKind,
    FailoverError,
    GuestTrap,
    NoRouteError,
    Policy,
    Request,
    Route,
    SwapError,
    VirtualClock,
)
from failover_policy.errors import PayloadTooLarge
from failover_policy.limits import Limits
from failover_policy.mock import QUOTA_429


def cooled_policy(mock, **kw) -> Policy:
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock(), **kw)
    route = policy.select()
    policy.on_failure(route, status=QUOTA_429[0], body=json.dumps(QUOTA_429[1]))
    return policy


def test_a_policy_that_refuses_the_snapshot_is_rejected_and_the_old_one_kept(mock) -> None:
    policy = cooled_policy(mock)
    before, version = policy.snapshot(), policy.version()
    with pytest.raises(SwapError, match="state.schema"):
        policy.swap(broken("schema"))
    assert policy.version() == version
    assert policy.snapshot() == before
    assert policy.select().position == 1


ROUTE = Route("alibaba-coding-plan", "qwen3.6-plus", "ali-1", 0)


def notices(policy: Policy, rule: str) -> list[str]:
    return [e.message for e in policy.events if e.kind == EventKind.NOTICE and e.rule == rule]


@pytest.mark.parametrize("feature, call, cause", [
    ("trap", lambda p: p.select(), "unreachable"),
    ("alloc", lambda p: p.select(), "memory"),
    ("loop", lambda p: p.on_failure(ROUTE, status=503), "timed out"),
])
def test_a_misbehaving_policy_is_contained_with_the_state_intact(mock, feature, call, cause) -> None:
    policy = cooled_policy(mock, limits=Limits(call_time_s=0.2))
    policy.swap(broken(feature))
    before = policy.snapshot()
    try:
        call(policy)
    except NoRouteError as exc:
        assert "the failover policy failed" in str(exc)
    assert policy.snapshot() == before
    [message] = notices(policy, "host.policy-fault")
    assert cause in message and "restarted from the last good state" in message


def test_fail_open_retries_a_provider_side_failure_once_and_gives_up_on_the_rest(mock) -> None:
    policy = cooled_policy(mock, limits=Limits(call_time_s=0.2))
    policy.swap(broken("loop"))
    retry = policy.on_failure(ROUTE, status=503)
    assert (retry.kind, retry.route, retry.delay_ms, retry.rule) == (ActionKind.RETRY, ROUTE, 1000, "host.policy-fault.retry")
    again = policy.on_failure(ROUTE, status=503, progress=retry.progress)
    assert again.kind == ActionKind.GIVE_UP and "the failover policy failed" in again.error.message
    assert policy.on_failure(ROUTE, status=400).kind == ActionKind.GIVE_UP


def test_fail_closed_gives_up_with_a_clear_error(mock) -> None:
    policy = cooled_policy(mock, limits=Limits(call_time_s=0.2), supervision="closed")
    policy.swap(broken("loop"))
    action = policy.on_failure(ROUTE, status=503)
    assert action.kind == ActionKind.GIVE_UP and action.rule == "host.policy-fault.give-up"
    assert "the failover policy failed (" in action.why


def test_a_crash_loop_falls_back_to_the_previous_policy(mock) -> None:
    policy = cooled_policy(mock)
    version, before = policy.version(), policy.snapshot()
    policy.swap(broken("trap"))
    for _ in range(3):
        with pytest.raises(NoRouteError, match="the failover policy failed"):
            policy.select()
    assert policy.version() == version
    assert policy.snapshot() == before
    assert policy.select().position == 1
    [message] = notices(policy, "host.policy-crash-loop")
    assert "failed 3 times" in message and "fell back to the previous policy" in message


def test_a_crash_loop_with_nothing_to_fall_back_to_fails_closed(mock) -> None:
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock(), wasm=broken("trap"))
    for _ in range(4):
        with pytest.raises(NoRouteError, match="the failover policy failed"):
            policy.select()
    with pytest.raises(FailoverError, match="the failover policy failed"):
        policy.start_call()
    with pytest.raises(GuestTrap):
        policy.classify("alibaba-coding-plan", status=503)
    assert len(notices(policy, "host.policy-fault")) == 2
    assert len(notices(policy, "host.policy-closed")) == 1


def test_an_oversized_payload_is_refused_before_the_call(mock) -> None:
    policy = cooled_policy(mock)
    with pytest.raises(PayloadTooLarge, match="over the policy's payload limit"):
        policy.prepare(ROUTE, Request(body=b"x" * (2 << 20)))
