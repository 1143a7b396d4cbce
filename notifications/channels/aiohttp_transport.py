"""An httpx transport that sends through one pooled aiohttp session, for an SDK built on httpx.

The Tencent SMS SDK takes an `httpx.AsyncClient`. httpx's own transport (httpcore) walks
its whole pool for every request: 1.0 ms of CPU per call one at a time, 2–3 ms with many
in flight, against about 0.65 ms through this transport (bench/notify.py).

The errors keep the one distinction the channels live by: httpx.ConnectError and
httpx.ConnectTimeout only when no request can have left (refused, unreachable, TLS or
connect failing), so that sending again cannot send twice; a timeout or a dropped
connection after that is httpx.ReadTimeout or httpx.ReadError, "maybe received".
(httpx-aiohttp 0.2.0 maps every aiohttp connection error, a connection dropped under an
answer included, to ConnectTimeout, which our SMS channel would read as "never sent".)
"""

from __future__ import annotations

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, connections: int) -> None:
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None  # made in the loop of the first request

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections),
                auto_decompress=False,  # httpx decodes the body by its Content-Encoding
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wait = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=wait.get("connect"), sock_read=wait.get("read")
        )
        body = await request.aread()
        try:
            async with self._client().request(
                request.method,
                str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            ) as answer:
                content = await answer.read()
                status, headers = answer.status, list(answer.raw_headers)
        except aiohttp.ConnectionTimeoutError as error:
            raise httpx.ConnectTimeout(str(error), request=request) from error
        except aiohttp.ClientConnectorError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        except TimeoutError as error:  # aiohttp's read timeouts are TimeoutErrors too
            raise httpx.ReadTimeout(str(error) or "timed out reading the answer", request=request) from error
        except aiohttp.ClientError as error:
            raise httpx.ReadError(f"{type(error).__name__}: {error}", request=request) from error
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content), request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
