"""HTTP for the guest's `send` import: httpx with the outbound's timeouts; never raises.

Transport problems come back as `TransportFailure` values: an exception raised into the guest
would poison its instance.
"""

from __future__ import annotations

import ssl

import httpx

from .secrets import Scrub
from .types import HttpResponse, Outbound, TransportFailure, TransportKind

ERROR_BODY_LIMIT = 64 * 1024
_HOP_BY_HOP = {"content-encoding", "content-length", "transfer-encoding", "connection"}


def transport_kind(exc: BaseException) -> TransportKind:
    """The WIT transport kind of an httpx (or socket) exception."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return TransportKind.TIMEOUT
    text = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}".lower()
    if isinstance(exc, ssl.SSLError) or "ssl" in text or "certificate" in text:
        return TransportKind.TLS
    if any(s in text for s in ("name or service not known", "nodename nor servname", "getaddrinfo",
                               "name resolution", "no address associated")):
        return TransportKind.DNS
    if "refused" in text or isinstance(exc, ConnectionRefusedError):
        return TransportKind.CONNECTION_REFUSED
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError
                  | ConnectionResetError | BrokenPipeError):
        return TransportKind.RESET
    return TransportKind.OTHER


def failure_of(exc: BaseException, secret: str | None = None) -> TransportFailure:
    """Scrubbed of `secret` before it is cut, so no part of it is left at the cut."""
    return TransportFailure(transport_kind(exc), Scrub(secret).text(f"{type(exc).__name__}: {exc}")[:500])


def timeouts(out: Outbound) -> httpx.Timeout:
    read = out.read_timeout_ms / 1000
    return httpx.Timeout(connect=out.connect_timeout_ms / 1000, read=read, write=read, pool=read)


def request_headers(out: Outbound, secret: str | None) -> list[tuple[str, str]]:
    headers = list(out.headers)
    if secret is not None and out.secret_header:
        headers.append((out.secret_header, out.secret_prefix + secret))
    return headers


def response_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """Headers to pass on: the body is already decoded, so its framing headers no longer apply."""
    return [(k, v) for k, v in headers.multi_items() if k.lower() not in _HOP_BY_HOP]


def _scrubbed(resp: httpx.Response, body: bytes, secret: str | None) -> HttpResponse:
    """What the guest and the caller get: the secret out, then an error body cut to its prefix
    (so a secret across the cut is caught whole, and its beginning not left at the end)."""
    scrub = Scrub(secret)
    response = scrub.response(HttpResponse(resp.status_code, response_headers(resp.headers), body))
    if 200 <= resp.status_code < 300:
        return response
    # Reading stopped at the limit: more may have followed.
    head = scrub.prefix(response.body, ERROR_BODY_LIMIT, more=len(body) >= ERROR_BODY_LIMIT)
    return HttpResponse(response.status, response.headers, head)


class HttpSender:
    """Sends outbounds with a pooled `httpx.Client` (a throwaway one when a fresh connection is asked)."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(follow_redirects=False)

    def send(self, out: Outbound, secret: str | None) -> HttpResponse | TransportFailure:
        """The answer with `secret` scrubbed from it, even when the provider echoes it."""
        try:
            if out.fresh_connection:
                with httpx.Client(follow_redirects=False) as client:
                    return self._send(client, out, secret)
            return self._send(self.client, out, secret)
        except Exception as exc:  # any failure is a value for the guest
            return failure_of(exc, secret)

    @staticmethod
    def _send(client: httpx.Client, out: Outbound, secret: str | None) -> HttpResponse:
        req = client.build_request(out.method, out.url, headers=request_headers(out, secret),
                                   content=out.body, timeout=timeouts(out))
        resp = client.send(req, stream=True)
        try:
            if 200 <= resp.status_code < 300:  # success: the whole body; else a prefix to classify
                body = resp.read()
            else:
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) >= ERROR_BODY_LIMIT:
                        break
        finally:
            resp.close()
        return _scrubbed(resp, body, secret)

    def close(self) -> None:
        self.client.close()


class AsyncHttpSender:
    """The same as HttpSender on `httpx.AsyncClient`, for event loops."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient(follow_redirects=False)

    async def send(self, out: Outbound, secret: str | None) -> HttpResponse | TransportFailure:
        """The answer with `secret` scrubbed from it, even when the provider echoes it."""
        try:
            if out.fresh_connection:
                async with httpx.AsyncClient(follow_redirects=False) as client:
                    return await self._send(client, out, secret)
            return await self._send(self.client, out, secret)
        except Exception as exc:  # any failure is a value for the guest
            return failure_of(exc, secret)

    @staticmethod
    async def _send(client: httpx.AsyncClient, out: Outbound, secret: str | None) -> HttpResponse:
        req = client.build_request(out.method, out.url, headers=request_headers(out, secret),
                                   content=out.body, timeout=timeouts(out))
        resp = await client.send(req, stream=True)
        try:
            if 200 <= resp.status_code < 300:  # success: the whole body; else a prefix to classify
                body = await resp.aread()
            else:
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) >= ERROR_BODY_LIMIT:
                        break
        finally:
            await resp.aclose()
        return _scrubbed(resp, body, secret)

    async def aclose(self) -> None:
        await self.client.aclose()
