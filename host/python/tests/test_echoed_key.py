"""A provider that echoes the key it was sent (in its error body, in a header, in a stream's error
event, in an answer), through the `openai` SDK over the transports on loopback HTTP: the key
reaches no SDK error, log line, event, snapshot or stored state (file and Redis), and the messages
still say what went wrong. The keys have no documented prefix, so the guest's own masking cannot
hide them: only the host's scrubbing does."""

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from failover_policy import AsyncFailoverTransport, FailoverTransport, FileStore, Policy, RedisStore, VirtualClock
from failover_policy.secrets import Scrub
from failover_policy.types import HttpResponse

OPENAI_KEY = "proxy-7Hq2Wm9x-Lr4tZc8v-0001"
ANTHROPIC_KEY = "relay-Kp3Vd8Ns-Qy6Gh1Bw-0002"
SECRETS = {"oa-1": OPENAI_KEY, "an-1": ANTHROPIC_KEY, "ok-1": OPENAI_KEY}
MESSAGES = [{"role": "user", "content": "hello"}]


class Echo:
    """`/openai`: a 401 naming the key; `/anthropic`: a 200 event stream whose error event names
    it; anything else: an answer naming it. Every reply also carries the header value in `x-echo-key`."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                header = self.headers.get("authorization") or self.headers.get("x-api-key") or ""
                sent = header.removeprefix("Bearer ")  # the bare key: the guest cannot tell it from text
                provider = self.path.strip("/").split("/")[0]
                if provider == "openai":
                    status, kind = 401, "application/json"
                    body = json.dumps({"error": {"message": f"Incorrect API key provided: {sent}.",
                                                 "type": "invalid_request_error", "code": "invalid_api_key"}})
                elif provider == "anthropic":
                    status, kind = 200, "text/event-stream"
                    error = {"type": "error", "error": {"type": "overloaded_error",
                                                        "message": f"Overloaded; retry later with {sent}"}}
                    body = f"event: message_start\ndata: {{}}\n\nevent: error\ndata: {json.dumps(error)}\n\n"
                else:
                    status, kind = 200, "application/json"
                    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": f"you sent {sent}"}}]})
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("x-echo-key", header)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def config(self, primary: str, fallback: str | None = None) -> dict[str, Any]:
        port = self.server.server_address[1]
        providers = {name: {"base_url": f"http://127.0.0.1:{port}/{name}/v1", "credentials": [{"id": cred}]}
                     for name, cred in [("openai", "oa-1"), ("anthropic", "an-1"), ("ok", "ok-1")]}
        config: dict[str, Any] = {"providers": providers, "primary": {"provider": primary, "model": "m"}, "seed": 1}
        if fallback:
            config["fallback_providers"] = [{"provider": fallback, "model": "m"}]
        return config


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    yield e
    e.server.shutdown()
    e.server.server_close()




def sync_create(policy: Policy) -> Any:
    client = openai.OpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                           http_client=httpx.Client(transport=FailoverTransport(policy)))
    return client.chat.completions.create(model="x", messages=MESSAGES)


def async_create(policy: Policy) -> Any:
    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                                    http_client=httpx.AsyncClient(transport=AsyncFailoverTransport(policy)))
        return await client.chat.completions.create(model="x", messages=MESSAGES)
    return asyncio.run(run())


def raw_state(store: FileStore | RedisStore, where: str) -> str:
    """Everything the store holds, raw: the base and every log entry (what any process reads)."""
    if isinstance(store, FileStore):
        parts = [p.read_text() for p in (Path(where), Path(where + ".log")) if p.exists()]
    else:
        client = redis.Redis.from_url(where)
        base = client.get(store.key)
        parts = ([] if base is None else [base.decode()]) + \
            [fields[b"state"].decode() for _, fields in client.xrange(store.log, "-", "+")]
    assert parts, "the store holds nothing: the test would prove nothing"
    return "\n".join(parts)


def assert_no_key(what: str, text: str) -> None:
    for key in (OPENAI_KEY, ANTHROPIC_KEY):
        assert key not in text, f"{what} holds the key {key}: {text}"


@pytest.mark.parametrize("create", [sync_create, async_create], ids=["sync", "async"])
@pytest.mark.parametrize("kind", ["file", "redis"])
def test_an_echoed_key_reaches_no_error_log_event_or_state(echo: Echo, create: Any, kind: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    where = str(tmp_path / "state.json") if kind == "file" else request.getfixturevalue("redis_server").url
    store = FileStore(where) if kind == "file" else RedisStore(where, "echoed-key")
    caplog.set_level(logging.DEBUG, logger="failover_policy")
    policy = Policy.load(echo.config("openai", "anthropic"), secrets=SECRETS, clock=VirtualClock(), store=store)

    with pytest.raises(openai.APIStatusError) as raised:
        create(policy)

    error = raised.value
    assert_no_key("the SDK error", f"{error} {error.body} {error.response.text} {dict(error.response.headers)}")
    assert_no_key("the log", caplog.text)
    said = [e.message for e in policy.events]
    assert said, "the policy said what happened"
    for message in said:
        assert_no_key("an event", message)
    assert_no_key("the snapshot", policy.snapshot())
    assert_no_key(f"the {kind} store", raw_state(store, where))
    # Still says what went wrong, with the key recognisable by its tail.
    text = "\n".join([str(error), caplog.text, *said])
    assert "401 Incorrect API key provided: ...0001" in text, text
    assert "stream error: Overloaded; retry later with ...0002" in text, text


@pytest.mark.parametrize("create", [sync_create, async_create], ids=["sync", "async"])
def test_an_answer_that_echoes_the_key_reaches_the_caller_without_it(echo: Echo, create: Any) -> None:
    policy = Policy.load(echo.config("ok"), secrets=SECRETS, clock=VirtualClock())
    reply = create(policy)
    assert reply.choices[0].message.content == "you sent ...0001"


@pytest.mark.parametrize("secret, data, want", [
    (OPENAI_KEY, f"bad key Bearer {OPENAI_KEY}.", "bad key Bearer ...0001."),
    (OPENAI_KEY, f"{OPENAI_KEY}{OPENAI_KEY}", "...0001...0001"),
    ("short-key-1", "short-key-1 rejected", "... rejected"),
    ("k", "keep every k", "keep every k"),  # too short to tell from text
    (None, f"no secret {OPENAI_KEY}", f"no secret {OPENAI_KEY}"),
])
def test_scrub_masks_every_occurrence(secret: str | None, data: str, want: str) -> None:
    scrub = Scrub(secret)
    assert scrub.text(data) == want
    response = scrub.response(HttpResponse(401, [("x-echo", data)], data.encode()))
    assert (response.headers, response.body) == ([("x-echo", want)], want.encode())


def test_a_cut_prefix_loses_a_secret_begun_at_the_cut() -> None:
    scrub = Scrub(OPENAI_KEY)
    body = b"x" * 90 + OPENAI_KEY.encode()
    assert scrub.prefix(body, 100) == b"x" * 90
    assert scrub.prefix(b"ends with proxy-7Hq", 100) == b"ends with proxy-7Hq", "not cut: kept whole"
    assert scrub.prefix(b"ends with proxy-7Hq", 100, more=True) == b"ends with "
