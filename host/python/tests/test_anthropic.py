"""(c) The transports under the real `anthropic` SDK (2.x, on httpx2): Anthropic's own event
stream judged before the caller sees it, sync and async, streaming and not."""

import asyncio
from typing import Any

import anthropic
import httpx2
import pytest

from failover_policy import Policy
from failover_policy.mock import MockProviders, Stream, sse
from failover_policy.transport_httpx2 import AsyncFailoverTransport, FailoverTransport

SECRETS = {"a-1": "sk-ant-aaaaaaaaaaaa", "b-1": "sk-ant-bbbbbbbbbbbb"}
MESSAGES = [{"role": "user", "content": "hello"}]


def event(kind: str, **data: Any) -> bytes:
    return sse({"type": kind, **data}, event=kind)


def message(*texts: str) -> list[tuple[float, bytes]]:
    """An Anthropic Messages stream of `texts`, complete."""
    start = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
    events = [event("message_start", message=start),
              event("content_block_start", index=0, content_block={"type": "text", "text": ""})]
    events += [event("content_block_delta", index=0, delta={"type": "text_delta", "text": t}) for t in texts]
    events += [event("content_block_stop", index=0),
               event("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 2}),
               event("message_stop")]
    return [(0.0, e) for e in events]


OVERLOADED = Stream([(0.0, event("error", error={"type": "overloaded_error", "message": "Overloaded"}))])


def config(mock: MockProviders) -> dict[str, Any]:
    limits = {"headers_ms": 1000, "first_content_ms": 1000, "idle_ms": 500}
    return {"providers": {"anthropic-a": {"base_url": mock.base_url("a"), "credentials": [{"id": "a-1"}], "timeouts": limits},
                          "anthropic-b": {"base_url": mock.base_url("b"), "credentials": [{"id": "b-1"}], "timeouts": limits}},
            "primary": {"provider": "anthropic-a", "model": "claude-a"},
            "fallback_providers": [{"provider": "anthropic-b", "model": "claude-b"}],
            "retry": {"route_retries": 0}}


def sync_client(policy: Policy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url="http://failover.local", api_key="unused", max_retries=0,
                               http_client=httpx2.Client(transport=FailoverTransport(policy)))


def async_client(policy: Policy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url="http://failover.local", api_key="unused", max_retries=0,
                                    http_client=httpx2.AsyncClient(transport=AsyncFailoverTransport(policy)))


def read_text(client: Any) -> tuple[list[str], BaseException | None]:
    got: list[str] = []

    async def run_async() -> None:
        async with client.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
            async for text in stream.text_stream:
                got.append(text)

    try:
        if isinstance(client, anthropic.AsyncAnthropic):
            asyncio.run(run_async())
        else:
            with client.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
                got.extend(stream.text_stream)
    except anthropic.AnthropicError as exc:
        return got, exc
    return got, None


TRANSPORTS = pytest.mark.parametrize("client", [sync_client, async_client], ids=["sync", "async"])


@TRANSPORTS
def test_overloaded_error_event_first_falls_back_unseen(mock, client) -> None:
    mock.answers["a"], mock.answers["b"] = OVERLOADED, Stream(message("Hello ", "there."))
    got, error = read_text(client(Policy.load(config(mock), secrets=SECRETS)))
    assert error is None and got == ["Hello ", "there."]
    assert len(mock.sent_to("a")) == 1 and len(mock.sent_to("b")) == 1
    assert mock.sent_to("b")[0].body["model"] == "claude-b"


@TRANSPORTS
def test_a_stall_after_text_ends_with_the_sdks_error(mock, client) -> None:
    mock.answers["a"] = Stream(message("Half ")[:3], then="stall")
    got, error = read_text(client(Policy.load(config(mock), secrets=SECRETS)))
    assert got == ["Half "]
    assert isinstance(error, anthropic.APIError), f"the stall was passed off as a complete answer: {error!r}"
    assert not mock.sent_to("b")


@TRANSPORTS
def test_a_whole_message_through_the_transport(mock, client) -> None:
    whole = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
             "stop_sequence": None, "content": [{"type": "text", "text": "whole"}],
             "usage": {"input_tokens": 1, "output_tokens": 1}}
    mock.answers["a"] = (200, whole)
    create = client(Policy.load(config(mock), secrets=SECRETS)).messages.create(model="m", max_tokens=10, messages=MESSAGES)
    reply = asyncio.run(create) if asyncio.iscoroutine(create) else create
    assert reply.content[0].text == "whole"
