"""The failover transports for clients built on httpx2, the fork of httpx the `anthropic` SDK
(2.x) takes as its `http_client`:

    client = anthropic.Anthropic(base_url="http://failover.local", api_key="unused", max_retries=0,
                                 http_client=httpx2.Client(transport=FailoverTransport(policy)))

The same transports as `transport`, answering with httpx2's responses and streams; what they send
to providers still goes through httpx.
"""

from __future__ import annotations

import httpx2

from . import transport


class _Body(transport._Body, httpx2.SyncByteStream):
    pass


class _AsyncBody(transport._AsyncBody, httpx2.AsyncByteStream):
    pass


class FailoverTransport(transport.FailoverTransport, httpx2.BaseTransport):
    hx, body = httpx2, _Body


class AsyncFailoverTransport(transport.AsyncFailoverTransport, httpx2.AsyncBaseTransport):
    hx, async_body = httpx2, _AsyncBody
