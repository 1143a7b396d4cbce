"""The httpx transport over aiohttp: answers as httpx would give them, and errors that still say
whether a request can have left, against raw servers on loopback ports."""

from __future__ import annotations

import asyncio
import gzip
from urllib.parse import urlsplit

import httpx
import pytest

from notifications.channels.aiohttp_transport import AiohttpTransport
from notifications.channels.base import Message, Outcome
from notifications.channels.tencent_sms import TencentSmsChannel, TencentSmsConfig
from tests.fakes.raw import raw_server, read_request

pytestmark = pytest.mark.integration  # no database: real sockets on loopback


async def test_a_compressed_answer_reads_as_httpx_would_give_it() -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        body = gzip.compress('{"答": "好"}'.encode())
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"X-Two: a\r\nX-Two: b\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()

    async with raw_server(serve) as url, httpx.AsyncClient(transport=AiohttpTransport(4)) as client:
        answer = await client.post(f"{url}/path?q=1", json={"k": "v"}, headers={"X-Ours": "yes"})
    assert answer.status_code == 200
    assert answer.json() == {"答": "好"}
    assert answer.headers.get_list("X-Two") == ["a", "b"]
    (request,) = seen
    assert request.startswith(b"POST /path?q=1 HTTP/1.1\r\n")
    assert b"\r\nX-Ours: yes\r\n" in request and request.endswith(b'{"k":"v"}')


async def test_a_refused_connection_never_left() -> None:
    async with raw_server(read_request) as url:
        pass  # closed again: the port refuses
    async with httpx.AsyncClient(transport=AiohttpTransport(4)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


async def test_a_connection_dropped_under_the_answer_may_have_been_received() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # the whole request arrived: the provider may have acted on it
        writer.close()

    async with raw_server(serve) as url, httpx.AsyncClient(transport=AiohttpTransport(4)) as client:
        with pytest.raises(httpx.ReadError):
            await client.post(url, content=b"x")


async def test_a_slow_answer_is_a_read_timeout() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(1)
        writer.close()

    async with (
        raw_server(serve) as url,
        httpx.AsyncClient(transport=AiohttpTransport(4), timeout=0.2) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, content=b"x")


async def test_tencent_takes_a_dropped_connection_for_a_send_of_unclear_fate() -> None:
    # The case the transport exists to keep apart: read as "never sent", the dispatcher would
    # text the number again through the other provider without asking this one first.
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async with raw_server(serve) as url:
        endpoint = urlsplit(url)
        config = TencentSmsConfig(
            "id", "key", "1400000000", "长沙通", endpoint=endpoint.netloc, protocol="http", timeout_s=0.5
        )
        channel = TencentSmsChannel(config)
        try:
            delivery = await channel.send(Message("dropped-1", "+8613900000001", "1000001", {"1": "张*"}))
        finally:
            await channel.aclose()
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, True)
