"""httpx transports that carry every request through the policy.

Usage with the OpenAI SDK (pass `max_retries=0`: the SDK's own retries would fight the policy):

    client = openai.OpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                           http_client=httpx.Client(transport=FailoverTransport(policy)))

The path under `mount` (default `/v1`) of the client's URL becomes the request path under each
provider's base URL; the guest's `prepare` rewrites URL, model and auth.

A 0.2.0 policy drives each call (`Policy.begin`, carried out by `drive`): the caller gets the
response once the guest commits to an answer, and reads its body as it arrives, streamed or not;
the policy's lock is held only while it decides, never during HTTP or a wait. The call's deadline
is the earlier of the config's `deadline_ms` and the timeout the client passes with the request.
A 0.1.0 policy has no driven call: its transports read whole answers through the decision API
(start_call, prepare, send, on_success/on_failure).

When the policy gives up before an answer, the caller gets one error response (OpenAI error
shape carrying the policy's final message, which SDKs raise as their status error) or, with
`raise_errors=True`, a `FailoverError`. An answer that breaks off later ends with the error
event the policy wrote, or, when it wrote none, its reader raises `AnswerBroken`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import httpx

from .drive import AsyncDrive, Drive
from .errors import FailoverError
from .http import AsyncHttpSender
from .policy import Policy
from .types import ActionKind, Attempt, FinalError, HttpResponse, Outbound, Request, TransportFailure
from .upstream import AsyncHttpCarrier

_DROP_REQUEST_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}

# What the decision loop asks its driver to do: send an outbound, or wait some milliseconds.
Step = Outbound | int
Outcome = HttpResponse | TransportFailure | None


def policy_request(request: httpx.Request, mount: str) -> Request:
    path = request.url.raw_path.decode("ascii", "replace")
    if mount and (path == mount or path.startswith(mount + "/") or path.startswith(mount + "?")):
        path = path[len(mount):] or "/"
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in _DROP_REQUEST_HEADERS]
    return Request(path=path, method=request.method, headers=headers, body=request.content)


def timeout_ms(request: httpx.Request) -> int | None:
    """The caller's timeout for the request (the SDK's `timeout`, passed as httpx's read timeout)."""
    read = (request.extensions.get("timeout") or {}).get("read")
    return None if read is None else max(1, round(read * 1000))


class _Body(httpx.SyncByteStream):
    def __init__(self, drive: Drive) -> None:
        self._drive = drive

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._drive)

    def close(self) -> None:
        self._drive.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, drive: AsyncDrive) -> None:
        self._drive = drive

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._drive.__aiter__()

    async def aclose(self) -> None:
        await self._drive.aclose()


def decisions(policy: Policy, req: Request) -> Generator[Step, Outcome, HttpResponse]:
    """The decision loop, free of I/O: yields what to do, returns the answer or raises.

    Every choice is the guest's; this only feeds each outcome back and follows the action. What
    the guest's `succeeded` calls an answer (a 2xx with no error inside) is success; anything else
    is a failure for the guest to classify (wit/policy.wit, `send`).
    """
    start = policy.start_call()
    if start.delay_ms:
        yield start.delay_ms
    route, progress = start.route, start.progress
    attempts: list[Attempt] = []
    while True:
        at = policy.now_ms()
        result = yield policy.prepare(route, req)
        assert result is not None
        if isinstance(result, HttpResponse) and policy.succeeded(result.status, result.headers, result.body):
            policy.on_success(route)
            return result
        if isinstance(result, HttpResponse):
            action = policy.on_failure(route, result.status, result.headers, result.body, progress=progress)
            outcome = str(result.status)
        else:
            action = policy.on_failure(route, transport=result.kind, message=result.message, progress=progress)
            outcome = result.kind.value
        attempts.append(Attempt(route, at, outcome, action.classified, action))
        if action.kind is ActionKind.GIVE_UP or action.route is None:
            raise FailoverError(action.error or FinalError(action.classified.reason, action.why, None, []), attempts)
        if action.delay_ms:
            yield action.delay_ms
        route, progress = action.route, action.progress


def _last_status(attempts: list[Attempt]) -> int:
    """The last error status of the call: a 2xx that failed (an error event inside it) would be
    read by an SDK as an answer, so it counts as none."""
    return next((int(a.outcome) for a in reversed(attempts) if a.outcome.isdigit() and a.outcome[0] in "45"), 503)


class _Base:
    # The httpx the caller's client is built on, and the streams its responses take: httpx here;
    # `transport_httpx2` swaps in httpx2 (the `anthropic` SDK's fork of it).
    hx: Any = httpx
    body: Any = _Body
    async_body: Any = _AsyncBody

    def __init__(self, policy: Policy, mount: str = "/v1", raise_errors: bool = False) -> None:
        self.policy = policy
        self.mount = mount.rstrip("/")
        self.raise_errors = raise_errors

    def _error(self, exc: FailoverError, request: httpx.Request) -> httpx.Response:
        """The policy's final error as an OpenAI-shaped error response (what SDKs know to raise).

        The status is the last 4xx or 5xx of the call, or 503 when there was none (a transport
        failure, an error inside a 200, or a call that could not start)."""
        if self.raise_errors:
            raise exc
        status, reason, retry_at = _last_status(exc.attempts), exc.reason.value, exc.retry_at_ms
        body = {"error": {"message": str(exc), "type": "failover_error", "code": reason, "retry_at_ms": retry_at}}
        return self.hx.Response(status, json=body, headers={"x-failover-reason": reason}, request=request)

    def _response(self, resp: HttpResponse, request: httpx.Request) -> httpx.Response:
        return self.hx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


class FailoverTransport(_Base, httpx.BaseTransport):
    """Sync transport: HTTP through the policy's sender, waits on the policy's clock."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        req = policy_request(request, self.mount)
        if self.policy.drives:
            drive = Drive(self.policy.begin(req, timeout_ms(request)), self.policy.carrier())
            try:
                head = drive.commit()
            except FailoverError as exc:
                return self._error(exc, request)
            return self.hx.Response(head.status, headers=head.headers, stream=self.body(drive), request=request)
        return self._whole(req, request)

    def _whole(self, req: Request, request: httpx.Request) -> httpx.Response:
        """A 0.1.0 policy's call: the whole answer, through the decision API."""
        loop = decisions(self.policy, req)
        try:
            step = next(loop)
            while True:
                if isinstance(step, Outbound):
                    step = loop.send(self.policy.send(step))
                else:
                    self.policy.sleep_ms(step)
                    step = loop.send(None)
        except StopIteration as done:
            return self._response(done.value, request)
        except FailoverError as exc:
            return self._error(exc, request)


class AsyncFailoverTransport(_Base, httpx.AsyncBaseTransport):
    """Async transport: sends with `httpx.AsyncClient` and waits on the policy's clock with
    `Policy.wait_ms` (`asyncio.sleep` for the system clock), so the event loop is never blocked
    (the guest's decisions take microseconds)."""

    def __init__(self, policy: Policy, mount: str = "/v1", raise_errors: bool = False,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(policy, mount, raise_errors)
        self._sender = AsyncHttpSender(client)
        self._carrier = AsyncHttpCarrier(self._sender.client, policy.secret, policy.wait_ms)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        req = policy_request(request, self.mount)
        if self.policy.drives:
            drive = AsyncDrive(self.policy.begin(req, timeout_ms(request)), self._carrier)
            try:
                head = await drive.commit()
            except FailoverError as exc:
                return self._error(exc, request)
            return self.hx.Response(head.status, headers=head.headers, stream=self.async_body(drive), request=request)
        return await self._whole(req, request)

    async def _whole(self, req: Request, request: httpx.Request) -> httpx.Response:
        """A 0.1.0 policy's call: the whole answer, through the decision API."""
        loop = decisions(self.policy, req)
        try:
            step = next(loop)
            while True:
                if isinstance(step, Outbound):
                    step = loop.send(await self._sender.send(step, self.policy.secret(step.route.credential)))
                else:
                    await self.policy.wait_ms(step)
                    step = loop.send(None)
        except StopIteration as done:
            return self._response(done.value, request)
        except FailoverError as exc:
            return self._error(exc, request)

    async def aclose(self) -> None:
        await self._sender.aclose()
