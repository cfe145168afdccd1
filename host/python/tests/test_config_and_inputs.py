"""(e) Bad configs name the field; outside input never crashes the host."""

import pytest
from conftest import SECRETS, fallback_config

from failover_policy import ConfigError, Policy, Reason, VirtualClock
from failover_policy.secrets import Secrets, default_env_var, fingerprint


def test_unknown_fallback_provider_names_the_field(mock) -> None:
    config = fallback_config(mock)
    config["fallback_providers"][0]["provider"] = "nope"
    with pytest.raises(ConfigError) as err:
        Policy.load(config, secrets=SECRETS)
    assert err.value.field == "fallback_providers[0].provider"


@pytest.mark.parametrize("config", ["{not json", "[1, 2]", "/nonexistent/config.json"])
def test_unreadable_config_is_a_config_error(config: str) -> None:
    with pytest.raises(ConfigError) as err:
        Policy.load(config)
    assert err.value.field == "config"


def test_newer_state_schema_is_refused(mock) -> None:
    with pytest.raises(ConfigError) as err:
        Policy.load(fallback_config(mock), state={"schema": 99}, secrets=SECRETS)
    assert err.value.field.startswith("state")


def test_integers_are_range_checked_before_the_guest(mock) -> None:
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock())
    with pytest.raises(ValueError, match="status"):
        policy.on_failure(policy.select(), status=70000)
    assert policy.select().position == 0


def test_garbage_and_huge_bodies(mock) -> None:
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock())
    assert isinstance(policy.classify("alibaba-coding-plan", status=500, body=b"\xff\xfe garbage").reason, Reason)
    huge = b"x" * (10 * 1024 * 1024)
    action = policy.on_failure(policy.select(), status=503, body=huge)
    assert action.classified.reason in (Reason.SERVER_ERROR, Reason.OVERLOADED)


def test_secrets_from_environment(mock) -> None:
    config = fallback_config(mock)
    config["providers"]["alibaba-coding-plan"]["credentials"][0]["env"] = "ALI_KEY"
    secrets = Secrets(config, environ={"ALI_KEY": "a", default_env_var("ten-1"): "t"})
    assert default_env_var("ten-1") == "FAILOVER_KEY_TEN_1"
    assert {c.id: c.fingerprint for c in secrets.infos()} == {"ali-1": fingerprint("a"), "ten-1": fingerprint("t")}
    assert len(fingerprint("a")) == 16
    assert Secrets(config, environ={}).infos() == []
