"""(b) The guest-driven `call` against a real HTTP server on 127.0.0.1."""

import json

import pytest
from conftest import SECRETS, closed_port, deepseek_config, fallback_config

from failover_policy import FailoverError, Policy, Reason, Request, VirtualClock
from failover_policy.mock import DEEPSEEK_401, QUOTA_429

REQUEST = Request(body=json.dumps({"model": "placeholder", "messages": [{"role": "user", "content": "hi"}]}).encode(),
                  headers=[("authorization", "Bearer caller-key")])


def test_quota_429_falls_back_and_next_agent_starts_on_fallback(mock) -> None:
    mock.answers["ali"] = QUOTA_429
    config = fallback_config(mock)
    policy = Policy.load(config, secrets=SECRETS, clock=VirtualClock())
    result = policy.call(REQUEST)
    assert result.response.status == 200
    assert (result.route.provider, result.route.model) == ("tencent-token-plan", "kimi2.5")
    assert [a.outcome for a in result.attempts] == ["429", "200"]
    ali, ten = mock.sent_to("ali"), mock.sent_to("ten")
    assert [s.auth for s in ali] == ["Bearer sk-ali"] and [s.auth for s in ten] == ["Bearer sk-ten"]
    assert ten[0].body["model"] == "kimi2.5" and ten[0].path == "/ten/v1/chat/completions"
    assert any("using fallback 1/1" in e.message for e in policy.events)

    fresh = Policy.load(config, state=policy.snapshot(), secrets=SECRETS, clock=VirtualClock())
    assert fresh.select().position == 1
    fresh.call(REQUEST)
    assert len(mock.sent_to("ali")) == 1


def test_lone_expired_key_two_attempts_then_auth_permanent(mock) -> None:
    mock.answers["ds"] = DEEPSEEK_401
    clock = VirtualClock()
    policy = Policy.load(deepseek_config(mock.base_url("ds", "")), secrets=SECRETS, clock=clock)
    with pytest.raises(FailoverError) as err:
        policy.call(REQUEST)
    assert err.value.reason is Reason.AUTH_PERMANENT
    assert "key appears invalid or expired" in str(err.value)
    assert len(mock.sent_to("ds")) == 2 and clock.slept_ms == 0


def test_the_retry_after_a_401_opens_a_new_connection_other_attempts_reuse_the_pool(mock) -> None:
    policy = Policy.load(deepseek_config(mock.base_url("ds", "")), secrets=SECRETS, clock=VirtualClock())
    for _ in range(3):
        policy.call(REQUEST)
    rejections = iter([DEEPSEEK_401])
    mock.answers["ds"] = lambda body: next(rejections, None)
    result = policy.call(REQUEST)
    assert [(a.outcome, a.action and a.action.rule) for a in result.attempts] == [("401", "auth.fresh-retry"), ("200", None)]
    ports = [s.port for s in mock.sent_to("ds")]
    assert len(set(ports[:4])) == 1, f"pooled attempts share one connection: ports {ports}"
    assert ports[4] not in ports[:4], f"the retry reused a connection: ports {ports}"


def test_connection_refused_is_a_connection_failure() -> None:
    policy = Policy.load(deepseek_config(f"http://127.0.0.1:{closed_port()}"), secrets=SECRETS, clock=VirtualClock())
    with pytest.raises(FailoverError) as err:
        policy.call(REQUEST)
    assert err.value.reason is Reason.CONNECTION
    assert {a.outcome for a in err.value.attempts} == {"connection-refused"}


def test_missing_secret_is_reported_missing_not_no_key(mock) -> None:
    policy = Policy.load(fallback_config(mock), secrets={"ten-1": "sk-ten"}, clock=VirtualClock())
    assert policy.select().provider == "tencent-token-plan"
    assert policy.call(REQUEST).route.provider == "tencent-token-plan"
    assert mock.sent_to("ali") == []
