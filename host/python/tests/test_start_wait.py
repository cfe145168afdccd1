"""(d) Rule 7 at the start of a host-driven call: the transports start as `start_call` says.

The only key rests (rate-limited) until a time given in the snapshot. Within the call's wait
budget the transport waits on the policy's clock and then sends once; beyond it the call fails
at once, without a request, with the guest's per-provider message.
"""

import asyncio
import time
from typing import Any

import httpx
import pytest

from failover_policy import AsyncFailoverTransport, FailoverError, FailoverTransport, Policy, Reason, SystemClock, VirtualClock
from failover_policy.mock import MockProviders
from failover_policy.secrets import fingerprint

SECRET = "sk-acme"
BODY = {"model": "placeholder", "messages": [{"role": "user", "content": "hi"}]}


def config(mock: MockProviders) -> dict[str, Any]:
    return {
        "providers": {"acme": {"base_url": mock.base_url("acme"), "credentials": [{"id": "acme-1"}]}},
        "primary": {"provider": "acme", "model": "a-large"},
        "retry": {"max_wait_ms": 60000},
        "seed": 7,
    }


def resting_until(now_ms: int, until_ms: int) -> dict[str, Any]:
    """A snapshot whose only key is rate-limited until `until_ms` (same secret, so it stays so)."""
    return {"schema": 1, "saved_at_ms": now_ms, "active_position": 0, "rng": 7,
            "credentials": {"acme-1": {"cooldown_until_ms": until_ms, "cooldown_reason": "rate-limit",
                                       "last_reason": "rate-limit",
                                       "last_error": "429 Rate limit reached for requests",
                                       "last_error_ms": now_ms, "fingerprint": fingerprint(SECRET)}}}


def load(mock: MockProviders, clock: Any, rest_ms: int) -> Policy:
    now = clock.now_ms()
    return Policy.load(config(mock), state=resting_until(now, now + rest_ms), secrets={"acme-1": SECRET},
                       clock=clock)


def test_start_call_decides_the_wait(mock) -> None:
    policy = load(mock, VirtualClock(), 2000)
    start = policy.start_call()
    assert (start.route.credential, start.delay_ms, start.rule) == ("acme-1", 2000, "chain.wait-earliest")
    assert start.progress.waited_ms == 2000 and start.progress.attempts == 0
    assert "within the wait budget of 60000 ms" in start.why

    now = load(mock, VirtualClock(), 0).start_call()
    assert (now.delay_ms, now.rule, now.progress.waited_ms) == (0, "chain.select", 0)

    with pytest.raises(FailoverError, match="beyond the call's wait budget") as err:
        load(mock, VirtualClock(), 600000).start_call()
    assert err.value.reason is Reason.RATE_LIMIT and err.value.attempts == []
    assert err.value.error.providers[0].credentials[0].id == "acme-1"


def test_sync_transport_waits_for_the_resting_key_then_sends_once(mock) -> None:
    clock = VirtualClock()
    policy = load(mock, clock, 2000)
    with httpx.Client(transport=FailoverTransport(policy), base_url="http://failover.local/v1") as client:
        resp = client.post("/chat/completions", json=BODY)
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "hello from acme"
    assert clock.slept_ms == 2000
    assert len(mock.sent_to("acme")) == 1
    assert any(e.rule == "chain.wait-earliest" for e in policy.events)


def test_sync_transport_fails_at_once_beyond_the_wait_budget(mock) -> None:
    clock = VirtualClock()
    policy = load(mock, clock, 600000)
    with httpx.Client(transport=FailoverTransport(policy), base_url="http://failover.local/v1") as client:
        resp = client.post("/chat/completions", json=BODY)
    assert resp.status_code == 503 and resp.headers["x-failover-reason"] == "rate-limit"
    error = resp.json()["error"]
    assert "beyond the call's wait budget" in error["message"] and "acme-1" in error["message"]
    assert error["retry_at_ms"] == clock.now_ms() + 600000
    assert mock.sent_to("acme") == [] and clock.slept_ms == 0

    raising = httpx.Client(transport=FailoverTransport(policy, raise_errors=True), base_url="http://failover.local/v1")
    with pytest.raises(FailoverError, match="beyond the call's wait budget"):
        raising.post("/chat/completions", json=BODY)


def test_first_failure_after_the_wait_carries_the_waited_time(mock) -> None:
    mock.answers["acme"] = (400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
    clock = VirtualClock()
    policy = load(mock, clock, 2000)
    client = httpx.Client(transport=FailoverTransport(policy, raise_errors=True), base_url="http://failover.local/v1")
    with pytest.raises(FailoverError) as err:
        client.post("/chat/completions", json=BODY)
    first = err.value.attempts[0].action
    assert first is not None and first.progress.waited_ms >= 2000 and first.progress.attempts == 1
    assert len(mock.sent_to("acme")) == 1


def test_async_transport_waits_on_the_virtual_clock(mock) -> None:
    clock = VirtualClock()
    policy = load(mock, clock, 2000)

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=AsyncFailoverTransport(policy),
                                     base_url="http://failover.local/v1") as client:
            return await client.post("/chat/completions", json=BODY)

    assert asyncio.run(run()).status_code == 200
    assert clock.slept_ms == 2000 and len(mock.sent_to("acme")) == 1


def test_async_transport_really_waits_without_blocking_the_loop(mock) -> None:
    policy = load(mock, SystemClock(), 2000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.1)
            ticks += 1

    async def run() -> httpx.Response:
        beat = asyncio.create_task(ticker())
        try:
            async with httpx.AsyncClient(transport=AsyncFailoverTransport(policy),
                                         base_url="http://failover.local/v1") as client:
                return await client.post("/chat/completions", json=BODY)
        finally:
            beat.cancel()

    started = time.monotonic()
    resp = asyncio.run(run())
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and len(mock.sent_to("acme")) == 1
    assert 1.8 <= elapsed < 6, elapsed
    assert ticks >= 10, "the event loop was blocked during the wait"


def test_async_transport_fails_at_once_beyond_the_wait_budget(mock) -> None:
    policy = load(mock, SystemClock(), 600000)

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=AsyncFailoverTransport(policy),
                                     base_url="http://failover.local/v1") as client:
            return await client.post("/chat/completions", json=BODY)

    started = time.monotonic()
    resp = asyncio.run(run())
    assert time.monotonic() - started < 1
    assert resp.status_code == 503 and "beyond the call's wait budget" in resp.json()["error"]["message"]
    assert mock.sent_to("acme") == []
