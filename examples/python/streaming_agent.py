"""A streamed agent turn through the failover transport, the fallback taken before the first token.

The primary answers 200 and then an error event (as OpenRouter and Anthropic do when overloaded):
the policy judges it before anything reaches the agent, falls back, and the agent reads only the
fallback's tokens, as they come. A second turn on a primary that stalls after its first tokens
shows what the agent gets then: the tokens so far, and the SDK's error carrying the policy's
message. Runs against a loopback mock provider (no network, no real keys):

    pip install "host/python[test]" && python3 examples/python/streaming_agent.py
"""

import logging
import time

import httpx
import openai

from failover_policy import FailoverTransport, Policy
from failover_policy.mock import MockProviders, Stream, openai_stream, sse

logging.basicConfig(level=logging.INFO, format="  [%(levelname)s] %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)  # keep the policy's events readable

MESSAGES = [{"role": "user", "content": "Summarise the incident."}]


def turn(client: openai.OpenAI) -> None:
    started = time.monotonic()
    first = None
    try:
        for event in client.chat.completions.create(model="any", messages=MESSAGES, stream=True, timeout=30):
            text = event.choices[0].delta.content if event.choices else None
            if text:
                first = first or time.monotonic() - started
                print(text, end="", flush=True)
        print(f"\n  (first token after {first * 1000:.0f} ms)")
    except openai.APIError as exc:
        print(f"\n  the answer broke off: {exc.message}")


def main() -> None:
    with MockProviders() as mock:
        limits = {"headers_ms": 5000, "first_content_ms": 2000, "idle_ms": 1000}
        config = {
            "providers": {
                "openrouter": {"base_url": mock.base_url("or"), "credentials": [{"id": "or-1"}], "timeouts": limits},
                "tencent-token-plan": {"base_url": mock.base_url("ten"), "credentials": [{"id": "ten-1"}],
                                       "timeouts": limits},
            },
            "primary": {"provider": "openrouter", "model": "big"},
            "fallback_providers": [{"provider": "tencent-token-plan", "model": "kimi2.5"}],
            "retry": {"route_retries": 0},
        }
        policy = Policy.load(config, secrets={"or-1": "sk-or-example", "ten-1": "sk-ten-example"})
        client = openai.OpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(transport=FailoverTransport(policy)))

        print("turn 1: the primary sends an error event first")
        mock.answers["or"] = Stream([(0.05, sse({"error": {"message": "Provider returned error", "code": 502}}))])
        mock.answers["ten"] = Stream(openai_stream("The ", "outage ", "was ", "survived.", delay_s=0.1))
        turn(client)

        print("turn 2: the fallback stalls after its first tokens")
        mock.answers["ten"] = Stream(openai_stream("Half ", "an ")[:3], then="stall")
        turn(client)


if __name__ == "__main__":
    main()
