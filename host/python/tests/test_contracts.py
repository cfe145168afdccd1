"""The Python host speaks contracts 0.1.0, 0.2.0 and 0.3.0: the deployed 0.1.0 and 0.2.0 builds
load and decide as before (their frozen scenarios replay in test_scenarios.py), a 0.1/0.2 policy
answers the fleet's operations as the fleet layout says, and a component of any other version is
refused naming all three, at load and at swap, with the running policy kept."""

import json

import pytest
from conftest import SECRETS, V0_1_WASM, V0_2_WASM, fallback_config

from failover_policy import (
    ActionKind,
    ConfigError,
    ContractError,
    Delta,
    EventKind,
    Folded,
    Policy,
    SwapError,
    UnreadableState,
    VirtualClock,
)
from failover_policy.component import default_wasm
from failover_policy.fleet import fold_chunked
from failover_policy.mock import QUOTA_429

REFUSAL = r"exports failover:policy/policy@0\.9\.0; this host speaks 0\.1\.0, 0\.2\.0 and 0\.3\.0"


def future_wasm() -> bytes:
    """The packaged policy relabelled as contract 0.9.0 (same-length names: still a valid component)."""
    data = default_wasm()
    assert b"failover:policy/policy@0.3.0" in data
    return data.replace(b"@0.3.0", b"@0.9.0")


def cooled_policy(mock, **kw) -> Policy:
    """A policy whose primary key is in quota cooldown: later selects fall back."""
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock(), **kw)
    action = policy.on_failure(policy.select(), status=QUOTA_429[0], body=json.dumps(QUOTA_429[1]))
    assert action.kind == ActionKind.FALL_BACK, action.why
    return policy


def test_the_packaged_policy_speaks_0_3(mock) -> None:
    assert Policy.load(fallback_config(mock), secrets=SECRETS).contract == "0.3.0"


@pytest.mark.parametrize("wasm, version", [(V0_1_WASM, "0.1.0"), (V0_2_WASM, "0.2.0")])
def test_an_older_fixture_loads_says_its_version_and_decides(mock, wasm, version) -> None:
    policy = cooled_policy(mock, wasm=wasm)
    assert policy.contract == version
    name, schema = policy.version()
    assert name.startswith(version[:4]) and schema == 2
    assert EventKind.CREDENTIAL_COOLDOWN in [e.kind for e in policy.events]
    assert policy.select().provider == "tencent-token-plan"


def test_another_contract_version_is_refused_at_load_naming_all_three(mock) -> None:
    with pytest.raises(ContractError, match=REFUSAL):
        Policy.load(fallback_config(mock), secrets=SECRETS, wasm=future_wasm())


def test_another_contract_version_is_refused_at_swap_and_the_running_policy_stays(mock) -> None:
    policy = cooled_policy(mock)
    before, version = policy.snapshot(), policy.version()
    with pytest.raises(SwapError, match=REFUSAL):
        policy.swap(future_wasm())
    assert (policy.version(), policy.contract, policy.snapshot()) == (version, "0.3.0", before)
    assert policy.select().provider == "tencent-token-plan"


@pytest.mark.parametrize("wasm, version", [(V0_1_WASM, "0.1.0"), (V0_2_WASM, "0.2.0")])
def test_a_swap_to_an_older_fixture_and_back_carries_the_state(mock, wasm, version) -> None:
    policy = cooled_policy(mock)
    policy.swap(wasm)
    assert policy.contract == version
    assert policy.select().provider == "tencent-token-plan", f"{version} holds the cooldown 0.3.0 wrote"
    policy.swap(default_wasm())
    assert policy.contract == "0.3.0"
    assert policy.select().provider == "tencent-token-plan", f"and 0.3.0 again after {version}"


def test_an_older_policy_answers_the_fleet_operations_as_the_layout_says(mock) -> None:
    """No absorb (a clear ContractError), the whole snapshot as its changes, and a fold that merges
    pairwise, forgets nothing and names what it cannot read; neither says how long to keep it
    (`keep_until_ms` 0: a store keeps it for `forget_after_ms`)."""
    current = cooled_policy(mock)
    old = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock(), wasm=V0_2_WASM)
    fresh, cooled = old.snapshot(), current.snapshot()
    with pytest.raises(ContractError, match=r"contract 0\.2\.0, which has no engine\.absorb \(added in 0\.3\.0\)"):
        old.absorb(cooled)
    assert old.changes(fresh, fresh) is None
    assert old.changes(fresh, cooled) == Delta(cooled, 0)
    folded = old.fold([fresh, "not json", cooled], forget_after_ms=1)
    assert [(u.index, u.newer) for u in folded.unreadable] == [(1, False)]
    assert folded.unreadable[0].message.startswith("snapshot 1: ")
    assert folded.forgotten == 0 and folded.keep_until_ms == 0
    assert json.loads(folded.state or "{}")["credentials"]["ali-1"]["cooldown_until_ms"] > 0


def test_the_current_policy_diffs_absorbs_and_folds(mock) -> None:
    """Through both call paths (the suite runs again with FAILOVER_PY_CONVERTERS=off): a delta
    holds the cooldown, and its end as `keep_until_ms`, and is None when nothing changed, a peer's
    delta cools the key here, and a fold says the same end and names an unreadable and a newer
    state apart."""
    cooled = cooled_policy(mock)
    peer = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock())
    fresh = peer.snapshot()
    until = json.loads(cooled.snapshot())["credentials"]["ali-1"]["cooldown_until_ms"]
    delta = cooled.changes(fresh, cooled.snapshot())
    assert isinstance(delta, Delta) and "ali-1" in json.loads(delta.state)["credentials"]
    assert delta.keep_until_ms == until > 0, "the cooldown's end, read by the guest"
    assert cooled.changes(cooled.snapshot(), cooled.snapshot()) is None
    assert peer.fold([fresh]).keep_until_ms == 0, "nothing cooling: nothing to keep it for"
    peer.absorb(delta.state)
    assert peer.select().provider == "tencent-token-plan", "the peer's cooldown holds here"
    folded = peer.fold([fresh, "{", '{"schema": 99}', delta.state])
    assert [(u.index, u.newer) for u in folded.unreadable] == [(1, False), (2, True)]
    assert "newer" in folded.unreadable[1].message
    assert folded.keep_until_ms == until
    with pytest.raises(Exception, match="state"):
        peer.absorb('{"schema": 99}')
    with pytest.raises(ConfigError, match="snapshot since"):
        peer.changes("{", fresh)


def test_a_fold_in_chunks_keeps_the_last_chunks_end_which_covers_all_before() -> None:
    """Each chunk is folded with the result so far, so the last chunk's `keep_until_ms` is the
    whole fold's (the first chunk's end here is 5, the whole fold's 90)."""
    def fold(chunk: list[str]) -> Folded:
        readable = [s for s in chunk if s.isdigit()]
        bad = [UnreadableState(i, f"snapshot {i}: not a number", False) for i, s in enumerate(chunk) if not s.isdigit()]
        return Folded(max(readable, key=int) if readable else None, max(map(int, readable), default=0), bad, 0)
    folded = fold_chunked(fold, ["5", "90", "7", "x"], limit=2)
    assert isinstance(folded, Folded)
    assert (folded.state, folded.keep_until_ms) == ("90", 90)
    assert [u.index for u in folded.unreadable] == [3]
