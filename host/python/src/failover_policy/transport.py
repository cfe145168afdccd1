"""httpx transports that carry every request through the policy.

Usage with the OpenAI SDK (pass `max_retries=0`: the SDK's own retries would fight the policy):

    client = openai.OpenAI(base_url="http://failover.local/v1", api_key="unused", max_retries=0,
                           http_client=httpx.Client(transport=FailoverTransport(policy)))

The path under `mount` (default `/v1`) of the client's URL becomes the request path under each
provider's base URL; the guest's `prepare` rewrites URL, model and auth. Both transports drive
the decision API (start_call, prepare, send, on_success/on_failure, wait), so the policy's lock is
held only while it decides, never during HTTP or a wait. A call starts as the guest's
`start_call` says: at once, or after a wait for the earliest route when nothing is usable yet
but that route fits the call's wait budget, or not at all (the final error, per provider why). When the policy gives up, the caller
gets one error response (OpenAI error shape carrying the policy's final message, which SDKs raise
as their status error) or, with `raise_errors=True`, a `FailoverError`.
"""

from __future__ import annotations

from typing import Generator, Optional

import httpx

from .errors import FailoverError
from .http import AsyncHttpSender
from .policy import Policy
from .types import (ActionKind, Attempt, FinalError, HttpResponse, Outbound, Request,
                    TransportFailure)

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
        return httpx.Response(status, json=body, headers={"x-failover-reason": reason}, request=request)

    @staticmethod
    def _response(resp: HttpResponse, request: httpx.Request) -> httpx.Response:
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


class FailoverTransport(_Base, httpx.BaseTransport):
    """Sync transport: HTTP through the policy's sender, waits on the policy's clock."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        loop = decisions(self.policy, policy_request(request, self.mount))
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
                 client: Optional[httpx.AsyncClient] = None) -> None:
        super().__init__(policy, mount, raise_errors)
        self._sender = AsyncHttpSender(client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        loop = decisions(self.policy, policy_request(request, self.mount))
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
