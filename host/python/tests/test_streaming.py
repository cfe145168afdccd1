"""(c) Answers streamed through both transports under the real `openai` SDK, against a loopback
mock that delays, cuts, stalls, errs first, sends a malformed event or never answers: what the
caller reads, and how many attempts each route saw."""

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from conftest import SECRETS, V0_1_WASM, deepseek_config, fallback_config
from test_openai_transport import MESSAGES, async_client, sync_client

from failover_policy import FailoverTransport, Policy
from failover_policy.drive import Drive
from failover_policy.errors import AnswerBroken
from failover_policy.mock import DEEPSEEK_401, DONE, QUOTA_429, MockProviders, Stream, chunk, completion, openai_stream, sse
from failover_policy.types import CallInput, FinalError, InputKind, Reason, ResponseHead, Step, StepKind

TRANSPORTS = pytest.mark.parametrize("client", [sync_client, async_client], ids=["sync", "async"])
# Short limits on the primary, so a stall or a silence is judged within a test's patience.
LIMITS = {"headers_ms": 1000, "first_content_ms": 1000, "idle_ms": 500}


def config(mock: MockProviders, **primary: Any) -> dict[str, Any]:
    c = fallback_config(mock)
    c["providers"]["alibaba-coding-plan"]["timeouts"] = LIMITS
    c["providers"]["alibaba-coding-plan"].update(primary)
    c["retry"] = {"route_retries": 0}
    return c


def read_stream(client: Any, on_token: Any = None, **kwargs: Any) -> tuple[list[str], BaseException | None]:
    """The contents a streaming caller read, and what its stream raised (or None)."""
    got: list[str] = []

    def take(event: Any) -> None:
        if event.choices and event.choices[0].delta.content:
            got.append(event.choices[0].delta.content)
            if on_token is not None:
                on_token()

    async def run_async() -> None:
        async for event in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True, **kwargs):
            take(event)

    try:
        if isinstance(client, openai.AsyncOpenAI):
            asyncio.run(run_async())
        else:
            for event in client.chat.completions.create(model="m", messages=MESSAGES, stream=True, **kwargs):
                take(event)
    except openai.OpenAIError as exc:
        return got, exc
    return got, None


@TRANSPORTS
def test_tokens_reach_the_caller_as_they_come(mock, client) -> None:
    go = threading.Event()
    answer = Stream(openai_stream("The ", "answer."), wait_for=go)
    mock.answers["ali"] = answer
    # The mock sends the rest only once the caller has read the first token (or after 5 s).
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)), on_token=go.set)
    assert error is None and got == ["The ", "answer."]
    assert answer.released, "the first token reached the caller only after the provider had sent everything"
    assert len(mock.sent_to("ali")) == 1


@TRANSPORTS
def test_an_error_event_first_falls_back_unseen(mock, client) -> None:
    mock.answers["ali"] = Stream([(0, sse({"error": {"message": "Provider returned error", "code": 502}}))])
    mock.answers["ten"] = Stream(openai_stream("Backup ", "answer."))
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)))
    assert error is None and got == ["Backup ", "answer."]
    assert len(mock.sent_to("ten")) == 1 and len(mock.sent_to("ali")) >= 1


@TRANSPORTS
def test_a_stall_after_content_ends_the_stream_with_an_error(mock, client) -> None:
    mock.answers["ali"] = Stream(openai_stream("Half ", "an ")[:3], then="stall")
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)))
    assert got == ["Half ", "an "]
    assert isinstance(error, openai.APIError), f"the stall was passed off as a complete answer: {error!r}"
    assert len(mock.sent_to("ali")) == 1 and not mock.sent_to("ten"), "nothing is retried once the caller read content"


@TRANSPORTS
def test_a_cut_after_content_ends_the_stream_with_an_error(mock, client) -> None:
    mock.answers["ali"] = Stream(openai_stream("Half ", "an ")[:3], then="cut")
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)))
    assert got == ["Half ", "an "]
    assert isinstance(error, openai.APIError) and "broke off" in str(error)


@TRANSPORTS
def test_a_malformed_event_first_falls_back_unseen(mock, client) -> None:
    mock.answers["ali"] = Stream([(0, b"data: {\"choices\": [ not json\n\n")] + openai_stream("x"))
    mock.answers["ten"] = Stream(openai_stream("Backup."))
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)))
    assert error is None and got == ["Backup."]
    assert len(mock.sent_to("ali")) == 1 and len(mock.sent_to("ten")) == 1


@TRANSPORTS
def test_a_silent_primary_falls_back_after_its_head_limit(mock, client) -> None:
    mock.answers["ali"] = Stream([], silent=True)
    mock.answers["ten"] = Stream(openai_stream("Backup."))
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)))
    assert error is None and got == ["Backup."]
    ali, ten = mock.sent_to("ali"), mock.sent_to("ten")
    assert len(ali) == 1 and len(ten) == 1
    assert ten[0].at - ali[0].at >= LIMITS["headers_ms"] / 1000 * 0.9, "fell back before the head limit"


@TRANSPORTS
def test_the_sdk_timeout_is_the_calls_deadline(mock, client) -> None:
    mock.answers["ali"] = mock.answers["ten"] = Stream([], silent=True)
    c = config(mock)
    c["providers"]["alibaba-coding-plan"]["timeouts"] = {"headers_ms": 30000}
    started = time.monotonic()
    got, error = read_stream(client(Policy.load(c, secrets=SECRETS)), timeout=1.5)
    assert got == [] and isinstance(error, openai.APIStatusError)
    assert "deadline" in str(error), str(error)
    assert time.monotonic() - started < 10, "the call outlived the caller's timeout"


@TRANSPORTS
def test_whole_answers_still_come_whole(mock, client) -> None:
    # A whole answer sent in two pieces: the caller gets it whole, as before.
    body = json.dumps(completion("whole")).encode()
    mock.answers["ali"] = Stream([(0.05, body[:40]), (0.05, body[40:])], headers={"content-type": "application/json"})
    create = client(Policy.load(config(mock), secrets=SECRETS)).chat.completions.create(model="m", messages=MESSAGES)
    reply = asyncio.run(create) if asyncio.iscoroutine(create) else create
    assert reply.choices[0].message.content == "whole"


@TRANSPORTS
def test_expired_key_is_retried_once_on_a_new_connection(mock, client) -> None:
    # Seed incident 2 through the SDK: the guest asks for a fresh connection for the one retry.
    mock.answers["ds"] = DEEPSEEK_401
    policy = Policy.load(deepseek_config(mock.base_url("ds", "")), secrets=SECRETS)
    with pytest.raises(openai.AuthenticationError, match="key appears invalid or expired"):
        create = client(policy).chat.completions.create(model="anything", messages=MESSAGES)
        if asyncio.iscoroutine(create):
            asyncio.run(create)
    first, second = mock.sent_to("ds")
    assert first.port != second.port, "the retry came over the same pooled connection"


@TRANSPORTS
def test_a_secret_echoed_across_two_reads_is_scrubbed(mock, client) -> None:
    secret = "sk-ali-0123456789abcdef"
    event = chunk(f"you sent {secret}")
    cut = event.index(secret.encode()) + 10  # the secret split between two reads, 50 ms apart
    mock.answers["ali"] = Stream([(0, chunk()), (0, event[:cut]), (0.05, event[cut:]), (0, chunk(finish="stop")), (0, DONE)])
    policy = Policy.load(config(mock), secrets={**SECRETS, "ali-1": secret})
    got, error = read_stream(client(policy))
    assert error is None and got == ["you sent ...cdef"]


@TRANSPORTS
def test_a_0_1_0_policy_still_answers_whole(mock, client) -> None:
    # A deployed 0.1.0 policy has no driven call: the transports read whole answers as before.
    mock.answers["ali"] = QUOTA_429
    policy = Policy.load(fallback_config(mock), secrets=SECRETS, wasm=V0_1_WASM)
    assert not policy.drives
    create = client(policy).chat.completions.create(model="m", messages=MESSAGES)
    reply = asyncio.run(create) if asyncio.iscoroutine(create) else create
    assert reply.choices[0].message.content == "hello from ten"


@TRANSPORTS
def test_a_slow_first_token_falls_back_unseen(mock, client) -> None:
    mock.answers["ali"] = Stream([(0, chunk()), (3.0, chunk("late"))] + openai_stream()[1:])
    mock.answers["ten"] = Stream(openai_stream("Backup."))
    got, error = read_stream(client(Policy.load(config(mock), secrets=SECRETS)))
    assert error is None and got == ["Backup."]
    assert len(mock.sent_to("ali")) == 1 and len(mock.sent_to("ten")) == 1


def test_a_whole_answer_cut_after_its_head_makes_the_read_raise(mock) -> None:
    # Past its first 64 KiB a whole answer passes on as it comes; cut later, its reader must not
    # take the part read for all of it (a whole answer has no error event to say so).
    body = json.dumps(completion("x" * 100_000)).encode()
    mock.answers["ali"] = Stream([(0, body[:80_000])], headers={"content-type": "application/json"}, then="cut")
    policy = Policy.load(config(mock), secrets=SECRETS)
    client = httpx.Client(transport=FailoverTransport(policy), base_url="http://failover.local/v1")
    with pytest.raises(AnswerBroken, match="broke off"):
        client.post("/chat/completions", json={"model": "m", "messages": MESSAGES})
    with pytest.raises(AnswerBroken, match="broke off"):  # the openai SDK lets it through as it is
        sync_client(policy).chat.completions.create(model="m", messages=MESSAGES)


class _Scripted:
    """A driven call that plays back fixed steps, and a carrier that answers every step at once."""

    def __init__(self, *steps: Step) -> None:
        self.steps, self.closed = list(steps), False

    def next(self, given: CallInput) -> Step:
        return self.steps.pop(0)

    def close(self, drain: bool = False) -> None:
        self.closed = True

    def open(self, out: Any, within_ms: int) -> tuple[CallInput, Any]:
        return CallInput(InputKind.HEAD, head=ResponseHead(200, [])), self

    def read(self, within_ms: int) -> CallInput:
        return CallInput(InputKind.DATA, data=b"more")

    def sleep(self, ms: int) -> None:
        pass


def _step(kind: StepKind, commit: ResponseHead | None = None, deliver: bytes = b"",
          error: FinalError | None = None) -> Step:
    return Step(kind, None, 1000, commit, deliver, error, [], None, "test", "test")


def test_a_give_up_after_commit_with_no_error_event_raises_to_the_reader() -> None:
    broke = FinalError(Reason.CONNECTION, "the answer broke off", None, [])
    call = _Scripted(_step(StepKind.READ, commit=ResponseHead(200, []), deliver=b'{"part'),
                     _step(StepKind.GIVE_UP, error=broke))
    drive = Drive(call, call)
    assert drive.commit().status == 200
    read = b""
    with pytest.raises(AnswerBroken, match="broke off"):
        for data in drive:
            read += data
    assert read == b'{"part' and call.closed


@TRANSPORTS
def test_a_finished_stream_leaves_its_connection_pooled(mock, client) -> None:
    # Closing a response read to its end must not shut a connection now back in the pool.
    mock.answers["ali"] = Stream(openai_stream("ok"))
    sdk = client(Policy.load(config(mock), secrets=SECRETS))
    if isinstance(sdk, openai.AsyncOpenAI):
        async def twice() -> list[Any]:
            return [await read_async(sdk) for _ in range(2)]
        results = asyncio.run(twice())
    else:
        results = [read_stream(sdk)]
        # The sync transport's reader thread hands the connection back just after the caller's
        # last read: on a busy machine the next call could otherwise start a moment before.
        time.sleep(0.05)
        results.append(read_stream(sdk))
    assert results == [(["ok"], None)] * 2
    first, second = mock.sent_to("ali")
    assert first.port == second.port, "the second call could not reuse the first one's connection"


async def read_async(client: openai.AsyncOpenAI) -> tuple[list[str], None]:
    got = []
    async for event in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
        if event.choices and event.choices[0].delta.content:
            got.append(event.choices[0].delta.content)
    return got, None
