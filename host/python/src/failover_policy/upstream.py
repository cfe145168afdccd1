"""HTTP for a driven call's `send` and `read` steps: httpx streaming, every wait bounded by the
step's `within_ms`, the secret attached going out and scrubbed from all that comes back.

Each response is read by its own reader (a thread in sync code, a task on the event loop) into a
queue, and a step waits on the queue for as long as it allows: the wait is measured here, what a
timeout means is the guest's call. A response the guest is done with is closed (its thread's
socket shut, its task cancelled), and a `fresh_connection` send gets a throwaway client.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .http import failure_of, request_headers, response_headers, timeouts
from .secrets import Scrub, ScrubStream
from .types import CallInput, InputKind, Outbound, ResponseHead, TransportFailure

Secret = Callable[[str], str | None]
# What a reader queues: the head, body bytes, the end (None), or a transport failure.
Item = ResponseHead | bytes | TransportFailure | None


def _fresh_client() -> httpx.Client:
    return httpx.Client(follow_redirects=False)


class _Scrubbed:
    """Items as the guest gets them: the secret out of headers, failures and the body (across reads)."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self._scrub = Scrub(secret)
        self._body = ScrubStream(self._scrub)
        self._ending = False

    def head(self, resp: httpx.Response) -> ResponseHead:
        return ResponseHead(resp.status_code, [(self._scrub.text(k), self._scrub.text(v))
                                               for k, v in response_headers(resp.headers)])

    def given(self, item: Item) -> CallInput | None:
        """The input for `item`, or None when all of it is held back (a possible secret's start)."""
        if isinstance(item, ResponseHead):
            return CallInput(InputKind.HEAD, head=item)
        if isinstance(item, TransportFailure):
            return CallInput(InputKind.FAILED, failure=self._scrub.failure(item))
        if item is None:
            held = self._body.flush()
            return CallInput(InputKind.DATA, data=held) if held else CallInput(InputKind.END)
        data = self._body.feed(item)
        return CallInput(InputKind.DATA, data=data) if data else None


def _seconds(within_ms: int) -> float:
    return min(within_ms / 1000, threading.TIMEOUT_MAX)


class HttpUpstream:
    """One response read by its own daemon thread."""

    def __init__(self, client: httpx.Client, out: Outbound, secret: str | None, throwaway: bool) -> None:
        self._scrubbed = _Scrubbed(secret)
        self._items: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._resp: httpx.Response | None = None
        # A body that ended is reported once (after any bytes held back), then as the end again.
        self._ended = False
        threading.Thread(target=self._run, args=(client, out, throwaway), daemon=True,
                         name="failover-policy-upstream").start()

    def _run(self, client: httpx.Client, out: Outbound, throwaway: bool) -> None:
        try:
            with client.stream(out.method, out.url, headers=request_headers(out, self._scrubbed.secret),
                               content=out.body, timeout=timeouts(out)) as resp:
                self._resp = resp
                self._items.put(self._scrubbed.head(resp))
                for chunk in resp.iter_bytes():
                    if self._closed.is_set():
                        return
                    self._items.put(chunk)
            self._items.put(None)
        except Exception as exc:  # noqa: BLE001 (a value for the guest, as every transport failure is)
            if not self._closed.is_set():
                self._items.put(failure_of(exc, self._scrubbed.secret))
        finally:
            if throwaway:
                client.close()

    def read(self, within_ms: int) -> CallInput:
        """The head (first call after `open`), then the body's next bytes, each within `within_ms`."""
        if self._ended:
            return CallInput(InputKind.END)
        deadline = _Deadline(within_ms)
        while True:
            try:
                item = self._items.get(timeout=deadline.left_s())
            except queue.Empty:
                return CallInput(InputKind.TIMED_OUT)
            given = self._scrubbed.given(item)
            if given is not None:
                self._ended = given.kind is InputKind.END
                return given

    def close(self) -> None:
        """Stops the reader: a blocked read is woken by shutting its socket, never left to time out."""
        self._closed.set()
        stream = self._resp.extensions.get("network_stream") if self._resp is not None else None
        sock: Any = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Deadline:
    def __init__(self, within_ms: int) -> None:
        self._at = time.monotonic() + _seconds(within_ms)

    def left_s(self) -> float:
        return max(0.0, self._at - time.monotonic())


class HttpCarrier:
    """Carries out `send` and `sleep` for `drive.Drive` over a pooled `httpx.Client`."""

    def __init__(self, client: httpx.Client, secret: Secret, sleep_ms: Callable[[int], None],
                 fresh: Callable[[], httpx.Client] | None = None) -> None:
        self._client, self._secret, self._sleep = client, secret, sleep_ms
        self._fresh = fresh or _fresh_client

    def open(self, out: Outbound, within_ms: int) -> tuple[CallInput, HttpUpstream | None]:
        client = self._fresh() if out.fresh_connection else self._client
        upstream = HttpUpstream(client, out, self._secret(out.route.credential), out.fresh_connection)
        given = upstream.read(within_ms)
        if given.kind is InputKind.HEAD:
            return given, upstream
        upstream.close()
        return given, None

    def sleep(self, ms: int) -> None:
        self._sleep(ms)


class AsyncHttpUpstream:
    """One response read by its own task on the running event loop."""

    def __init__(self, client: httpx.AsyncClient, out: Outbound, secret: str | None, throwaway: bool) -> None:
        self._scrubbed = _Scrubbed(secret)
        self._items: asyncio.Queue[Item] = asyncio.Queue()
        self._ended = False
        self._task = asyncio.get_running_loop().create_task(self._run(client, out, throwaway))

    async def _run(self, client: httpx.AsyncClient, out: Outbound, throwaway: bool) -> None:
        try:
            async with client.stream(out.method, out.url, headers=request_headers(out, self._scrubbed.secret),
                                     content=out.body, timeout=timeouts(out)) as resp:
                self._items.put_nowait(self._scrubbed.head(resp))
                async for chunk in resp.aiter_bytes():
                    self._items.put_nowait(chunk)
            self._items.put_nowait(None)
        except Exception as exc:  # noqa: BLE001 (a value for the guest, as every transport failure is)
            self._items.put_nowait(failure_of(exc, self._scrubbed.secret))
        finally:
            if throwaway:
                await client.aclose()

    async def read(self, within_ms: int) -> CallInput:
        if self._ended:
            return CallInput(InputKind.END)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_ms / 1000
        while True:
            try:
                item = await asyncio.wait_for(self._items.get(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return CallInput(InputKind.TIMED_OUT)
            given = self._scrubbed.given(item)
            if given is not None:
                self._ended = given.kind is InputKind.END
                return given

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


class AsyncHttpCarrier:
    """Carries out `send` and `sleep` for `drive.AsyncDrive` over a pooled `httpx.AsyncClient`."""

    def __init__(self, client: httpx.AsyncClient, secret: Secret, wait_ms: Callable[[int], Any],
                 fresh: Callable[[], httpx.AsyncClient] | None = None) -> None:
        self._client, self._secret, self._wait = client, secret, wait_ms
        self._fresh = fresh or (lambda: httpx.AsyncClient(follow_redirects=False))

    async def open(self, out: Outbound, within_ms: int) -> tuple[CallInput, AsyncHttpUpstream | None]:
        client = self._fresh() if out.fresh_connection else self._client
        upstream = AsyncHttpUpstream(client, out, self._secret(out.route.credential), out.fresh_connection)
        given = await upstream.read(within_ms)
        if given.kind is InputKind.HEAD:
            return given, upstream
        await upstream.aclose()
        return given, None

    async def sleep(self, ms: int) -> None:
        await self._wait(ms)
