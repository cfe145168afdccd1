"""Time to first token, direct and through the failover transports, over loopback HTTP; and the
CPU the transports add per streamed event. Prints Markdown rows for BENCHMARKS.md.

    python3 host/python/bench/ttft.py
"""

import asyncio
import statistics
import time

import httpx
import openai

from failover_policy import AsyncFailoverTransport, FailoverTransport, Policy
from failover_policy.mock import MockProviders, Stream, openai_stream

RUNS = 30
EVENTS = 2000  # for the per-event cost: one stream this long, sent at once
MESSAGES = [{"role": "user", "content": "hi"}]


def clients(mock: MockProviders) -> dict[str, openai.OpenAI | openai.AsyncOpenAI]:
    config = {"providers": {"p": {"base_url": mock.base_url("p"), "credentials": [{"id": "p-1"}]}},
              "primary": {"provider": "p", "model": "m"}}
    policy = Policy.load(config, secrets={"p-1": "sk-bench-key"})
    common = {"api_key": "unused", "max_retries": 0}
    return {
        "direct (httpx.Client)": openai.OpenAI(base_url=mock.base_url("p"), **common),
        "FailoverTransport": openai.OpenAI(base_url="http://failover.local/v1", **common,
                                           http_client=httpx.Client(transport=FailoverTransport(policy))),
        "direct (httpx.AsyncClient)": openai.AsyncOpenAI(base_url=mock.base_url("p"), **common),
        "AsyncFailoverTransport": openai.AsyncOpenAI(base_url="http://failover.local/v1", **common,
                                                     http_client=httpx.AsyncClient(transport=AsyncFailoverTransport(policy))),
    }


async def first_async(client: openai.AsyncOpenAI) -> tuple[float, int]:
    """Seconds to the first content token, and how many events were read."""
    started, first, n = time.perf_counter(), 0.0, 0
    async for event in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
        n += 1
        if not first and event.choices and event.choices[0].delta.content:
            first = time.perf_counter() - started
    return first, n


def first_sync(client: openai.OpenAI) -> tuple[float, int]:
    started, first, n = time.perf_counter(), 0.0, 0
    for event in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
        n += 1
        if not first and event.choices and event.choices[0].delta.content:
            first = time.perf_counter() - started
    return first, n


async def measure_async(mock: MockProviders, client: openai.AsyncOpenAI) -> tuple[list[float], float]:
    # One event loop for all runs: the client's pooled connections belong to it.
    mock.answers["p"] = Stream(openai_stream(*["tok "] * 10, delay_s=0.02))
    await first_async(client)  # warm: connection pool, compiled converters
    ttft = [(await first_async(client))[0] for _ in range(RUNS)]
    mock.answers["p"] = Stream(openai_stream(*["tok "] * EVENTS))
    cpu = time.process_time()
    _, events = await first_async(client)
    return ttft, (time.process_time() - cpu) / events


def measure_sync(mock: MockProviders, client: openai.OpenAI) -> tuple[list[float], float]:
    mock.answers["p"] = Stream(openai_stream(*["tok "] * 10, delay_s=0.02))
    first_sync(client)
    ttft = [first_sync(client)[0] for _ in range(RUNS)]
    mock.answers["p"] = Stream(openai_stream(*["tok "] * EVENTS))
    cpu = time.process_time()
    _, events = first_sync(client)
    return ttft, (time.process_time() - cpu) / events


def main() -> None:
    with MockProviders() as mock:
        print("| path | time to first token, median (p10–p90) | CPU per streamed event |")
        print("|---|---|---|")
        for name, client in clients(mock).items():
            ttft, per_event = asyncio.run(measure_async(mock, client)) if isinstance(client, openai.AsyncOpenAI) \
                else measure_sync(mock, client)
            q = statistics.quantiles(ttft, n=10)
            print(f"| {name} | {statistics.median(ttft) * 1000:.1f} ms ({q[0] * 1000:.1f}–{q[-1] * 1000:.1f}) "
                  f"| {per_event * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
