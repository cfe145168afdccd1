"""The Python host speaks contracts 0.1.0 and 0.2.0: the deployed 0.1.0 build loads and decides
as before, and a component of any other version is refused naming both, at load and at swap,
with the running policy kept."""

import json

import pytest
from conftest import SECRETS, V0_1_WASM, broken, fallback_config

from failover_policy import ActionKind, ContractError, EventKind, Policy, SwapError, VirtualClock
from failover_policy.component import default_wasm
from failover_policy.mock import QUOTA_429

REFUSAL = r"exports failover:policy/policy@0\.3\.0; this host speaks 0\.1\.0 and 0\.2\.0"


def cooled_policy(mock, **kw) -> Policy:
    """A policy whose primary key is in quota cooldown: later selects fall back."""
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock(), **kw)
    action = policy.on_failure(policy.select(), status=QUOTA_429[0], body=json.dumps(QUOTA_429[1]))
    assert action.kind == ActionKind.FALL_BACK, action.why
    return policy


def test_the_packaged_policy_speaks_0_2(mock) -> None:
    assert Policy.load(fallback_config(mock), secrets=SECRETS).contract == "0.2.0"


def test_the_0_1_fixture_loads_says_its_version_and_decides(mock) -> None:
    policy = cooled_policy(mock, wasm=V0_1_WASM)
    assert policy.contract == "0.1.0"
    name, schema = policy.version()
    assert name.startswith("0.1.") and schema == 2
    assert EventKind.CREDENTIAL_COOLDOWN in [e.kind for e in policy.events]
    assert policy.select().provider == "tencent-token-plan"


def test_another_contract_version_is_refused_at_load_naming_both(mock) -> None:
    with pytest.raises(ContractError, match=REFUSAL):
        Policy.load(fallback_config(mock), secrets=SECRETS, wasm=broken("contract-0-3"))


def test_another_contract_version_is_refused_at_swap_and_the_running_policy_stays(mock) -> None:
    policy = cooled_policy(mock)
    before, version = policy.snapshot(), policy.version()
    with pytest.raises(SwapError, match=REFUSAL):
        policy.swap(broken("contract-0-3"))
    assert (policy.version(), policy.contract, policy.snapshot()) == (version, "0.2.0", before)
    assert policy.select().provider == "tencent-token-plan"


def test_a_swap_to_the_0_1_fixture_and_back_carries_the_state(mock) -> None:
    policy = cooled_policy(mock)
    policy.swap(V0_1_WASM)
    assert policy.contract == "0.1.0"
    assert policy.select().provider == "tencent-token-plan", "0.1.0 holds the cooldown 0.2.0 wrote"
    policy.swap(default_wasm())
    assert policy.contract == "0.2.0"
    assert policy.select().provider == "tencent-token-plan", "and 0.2.0 again after 0.1.0"
