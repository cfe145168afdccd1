"""(c) The httpx transports under the real `openai` SDK, reproducing both incidents."""

import asyncio
import time

import httpx
import openai
import pytest
from conftest import SECRETS, deepseek_config, fallback_config

from failover_policy import AsyncFailoverTransport, FailoverError, FailoverTransport, Policy, VirtualClock
from failover_policy.mock import DEEPSEEK_401, QUOTA_429

MESSAGES = [{"role": "user", "content": "hello"}]


def sync_client(policy: Policy) -> openai.OpenAI:
    # max_retries=0: the SDK's own retries on 429/5xx would fight the policy.
    return openai.OpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                         http_client=httpx.Client(transport=FailoverTransport(policy)))


def async_client(policy: Policy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                              http_client=httpx.AsyncClient(transport=AsyncFailoverTransport(policy)))


def test_sync_quota_incident(mock) -> None:
    mock.answers["ali"] = QUOTA_429
    config = fallback_config(mock)
    policy = Policy.load(config, secrets=SECRETS, clock=VirtualClock())
    reply = sync_client(policy).chat.completions.create(model="anything", messages=MESSAGES)
    assert reply.choices[0].message.content == "hello from ten"
    assert mock.sent_to("ten")[0].body["model"] == "kimi2.5"
    assert mock.sent_to("ten")[0].auth == "Bearer sk-ten"

    fresh = Policy.load(config, state=policy.snapshot(), secrets=SECRETS, clock=VirtualClock())
    sync_client(fresh).chat.completions.create(model="anything", messages=MESSAGES)
    assert len(mock.sent_to("ali")) == 1 and len(mock.sent_to("ten")) == 2


@pytest.mark.parametrize("client", [sync_client, async_client], ids=["sync", "async"])
def test_an_error_inside_a_200_is_no_answer(mock, client) -> None:
    # A 200 whose body is an error document (some gateways answer upstream failures this way).
    mock.answers["ali"] = (200, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, clock=VirtualClock())
    create = client(policy).chat.completions.create(model="anything", messages=MESSAGES)
    reply = asyncio.run(create) if asyncio.iscoroutine(create) else create
    assert reply.choices[0].message.content == "hello from ten"
    assert len(mock.sent_to("ali")) == 3, "overloaded: retried on the same key, then the fallback"


def test_sync_expired_key_incident(mock) -> None:
    mock.answers["ds"] = DEEPSEEK_401
    clock = VirtualClock()
    policy = Policy.load(deepseek_config(mock.base_url("ds", "")), secrets=SECRETS, clock=clock)
    with pytest.raises(openai.AuthenticationError) as err:
        sync_client(policy).chat.completions.create(model="anything", messages=MESSAGES)
    assert "key appears invalid or expired" in str(err.value)
    assert len(mock.sent_to("ds")) == 2 and clock.slept_ms == 0


def test_sync_raise_errors_gives_failover_error(mock) -> None:
    mock.answers["ds"] = DEEPSEEK_401
    policy = Policy.load(deepseek_config(mock.base_url("ds", "")), secrets=SECRETS, clock=VirtualClock())
    client = httpx.Client(transport=FailoverTransport(policy, raise_errors=True), base_url="http://failover.local/v1")
    with pytest.raises(FailoverError, match="key appears invalid or expired"):
        client.post("/chat/completions", json={"model": "x", "messages": MESSAGES})


def test_async_quota_incident(mock) -> None:
    mock.answers["ali"] = QUOTA_429
    config = fallback_config(mock)
    policy = Policy.load(config, secrets=SECRETS)

    async def run() -> str:
        reply = await async_client(policy).chat.completions.create(model="anything", messages=MESSAGES)
        return reply.choices[0].message.content

    assert asyncio.run(run()) == "hello from ten"
    fresh = Policy.load(config, state=policy.snapshot(), secrets=SECRETS)
    assert fresh.select().provider == "tencent-token-plan"
    assert len(mock.sent_to("ali")) == 1


def test_async_expired_key_incident_does_not_block(mock) -> None:
    mock.answers["ds"] = DEEPSEEK_401
    policy = Policy.load(deepseek_config(mock.base_url("ds", "")), secrets=SECRETS)

    async def run() -> None:
        with pytest.raises(openai.AuthenticationError) as err:
            await async_client(policy).chat.completions.create(model="anything", messages=MESSAGES)
        assert "key appears invalid or expired" in str(err.value)

    started = time.monotonic()
    asyncio.run(run())
    assert len(mock.sent_to("ds")) == 2 and time.monotonic() - started < 5
