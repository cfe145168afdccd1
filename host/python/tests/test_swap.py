"""(d) swap under concurrent load, a garbage swap, and recovery from a trapped instance."""

import json
import shutil
import threading
from importlib import resources

import pytest
from conftest import SECRETS, fallback_config

from failover_policy import GuestTrap, NoRouteError, Policy, SwapError, VirtualClock
from failover_policy.mock import QUOTA_429


def cooled_policy(mock) -> Policy:
    """A policy whose primary key is in quota cooldown (state that a swap must carry)."""
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock())
    route = policy.select()
    policy.on_failure(route, status=QUOTA_429[0], body=json.dumps(QUOTA_429[1]))
    return policy


def test_swap_under_concurrent_load(mock, tmp_path) -> None:
    wasm = tmp_path / "new-policy.wasm"
    shutil.copy(resources.files("failover_policy") / "policy.wasm", wasm)
    policy = cooled_policy(mock)
    results: list[int] = []
    errors: list[BaseException] = []
    halfway = threading.Barrier(5)

    def worker() -> None:
        try:
            for i in range(200):
                if i == 100:
                    halfway.wait()
                route = policy.select()
                policy.on_success(route)
                results.append(route.position)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    halfway.wait()
    report = policy.swap(wasm)
    for th in threads:
        th.join()
    assert report.ok and not errors
    assert len(results) == 800 and set(results) == {1}  # the primary's cooldown survived the swap
    assert json.loads(policy.snapshot())["credentials"]["ali-1"]["cooldown_reason"] == "quota-exhausted"


def test_swap_to_garbage_keeps_old_policy(mock, tmp_path) -> None:
    policy = cooled_policy(mock)
    before = policy.snapshot()
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"\0asm not really a component")
    with pytest.raises(SwapError, match="cannot load policy component"):
        policy.swap(garbage)
    with pytest.raises(SwapError):
        policy.swap(tmp_path / "absent.wasm")
    assert policy.snapshot() == before
    assert policy.select().position == 1


def test_trapped_instance_is_rebuilt_from_last_snapshot(mock) -> None:
    policy = cooled_policy(mock)
    policy._inst.poisoned = True  # what a guest trap leaves behind
    with pytest.raises(NoRouteError, match="the failover policy failed"):
        policy.select()
    assert policy.select().position == 1
    policy._inst.poisoned = True
    with pytest.raises(GuestTrap, match="restored the last good state"):
        policy.classify("alibaba-coding-plan", status=503)


def test_select_changes_persisted_state_only_with_an_event(mock) -> None:
    """Policy snapshots after select and start-call only when they emitted an event (a claimed
    probe, a moved chain position): hold the guest to that through cooldowns, fallbacks, an
    opened circuit and its probe."""
    clock = VirtualClock()
    config = fallback_config(mock)
    config["providers"]["alibaba-coding-plan"]["credentials"].append({"id": "ali-2"})
    policy = Policy.load(config, secrets={**SECRETS, "ali-2": "sk-ali-2"}, clock=clock)
    host = policy._host

    def state() -> dict:
        s = json.loads(policy._inst.snapshot(policy._engine))
        s.pop("saved_at_ms")
        return s

    changed_silently, changes = [], 0
    failures = [(503, "overloaded"), (429, json.dumps(QUOTA_429[1])), (500, "boom"), (502, ""), (401, "no")]
    for step in range(120):
        clock.advance([1_000, 30_000, 400_000, 4_000_000][step % 4])
        for call in (policy._inst.select, policy._inst.start_call):
            before, emitted = state(), host.emitted
            result = call(policy._engine)
            after = state()
            if after != before:
                changes += 1
                if host.emitted == emitted:
                    changed_silently.append((step, call.__name__, before, after))
            route = getattr(result, "route", result)
            if hasattr(route, "credential") and step % 3:
                status, body = failures[step % len(failures)]
                policy.on_failure(route, status=status, body=body)
    assert not changed_silently, changed_silently[0]
    assert changes > 0, "the sequence exercised select's state changes"
