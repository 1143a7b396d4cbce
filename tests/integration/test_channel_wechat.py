"""The WeChat subscription-message channel over real HTTP against a fake WeChat API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from notifications.channels.base import Channel, Message, Outcome
from notifications.channels.wechat import KEY_FIELD, WechatChannel, WechatConfig
from tests.fakes.loopback import Served, serving
from tests.fakes.raw import raw_server, read_request
from tests.fakes.wechat import FakeWechat, WechatState

pytestmark = pytest.mark.integration  # no database: real HTTP to a fake provider

TOKEN_PATH = "/cgi-bin/token"
SEND_PATH = "/cgi-bin/message/subscribe/send"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wechat() -> Iterator[tuple[Served, WechatState]]:
    FakeWechat.state = WechatState()
    with serving(FakeWechat) as served:
        yield served, FakeWechat.state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def channel(wechat: tuple[Served, WechatState], clock: Clock) -> AsyncIterator[WechatChannel]:
    served, state = wechat
    config = WechatConfig(
        state.appid, state.secret, page="pages/case/detail", base_url=served.url, timeout_s=0.5
    )
    channel = WechatChannel(config, clock=clock)
    yield channel
    await channel.aclose()


def notice(openid: str = "openid-a", key: str | None = None) -> Message:
    return Message(
        key=key or uuid.uuid4().hex,
        address=openid,
        template="TPL-accepted",
        variables={"thing1": "户籍迁入", "character_string2": "SQ2025-0001"},
        data={"case": "C-1"},
    )


def paths(served: Served) -> list[str]:
    return [r.path for r in served.received]


async def test_success_fetches_a_token_and_carries_the_key(
    channel: WechatChannel, wechat: tuple[Served, WechatState]
) -> None:
    served, state = wechat
    sender: Channel = channel
    delivery = await sender.send(notice(key="intent-42"))
    assert delivery.outcome is Outcome.DONE
    assert delivery.provider == "wechat"
    assert delivery.provider_id is not None and delivery.provider_id.isdigit()
    token_request, send_request = served.received
    assert token_request.method == "GET" and token_request.path == TOKEN_PATH
    assert token_request.query == {
        "grant_type": ["client_credential"],
        "appid": [state.appid],
        "secret": [state.secret],
    }
    assert send_request.path == SEND_PATH
    assert send_request.query["access_token"] == ["token-1"]
    body = send_request.json()
    assert body["touser"] == "openid-a"
    assert body["template_id"] == "TPL-accepted"
    assert body["miniprogram_state"] == "formal"
    assert body["data"] == {"thing1": {"value": "户籍迁入"}, "character_string2": {"value": "SQ2025-0001"}}
    page = urlsplit(body["page"])
    assert page.path == "pages/case/detail"
    assert parse_qs(page.query) == {"case": ["C-1"], KEY_FIELD: ["intent-42"]}


async def test_a_message_opens_its_own_page_with_the_key_added_to_its_query(
    channel: WechatChannel, wechat: tuple[Served, WechatState]
) -> None:
    served, _ = wechat
    message = dataclasses.replace(notice(key="intent-7"), data={}, page="pages/cases/detail?id=C-9")
    assert (await channel.send(message)).outcome is Outcome.DONE
    page = urlsplit(served.received[-1].json()["page"])
    assert page.path == "pages/cases/detail"
    assert parse_qs(page.query) == {"id": ["C-9"], KEY_FIELD: ["intent-7"]}


async def test_the_token_is_cached_until_shortly_before_it_expires(
    channel: WechatChannel, wechat: tuple[Served, WechatState], clock: Clock
) -> None:
    served, _ = wechat
    for _ in range(5):
        assert (await channel.send(notice())).outcome is Outcome.DONE
    assert paths(served).count(TOKEN_PATH) == 1
    clock.now += 7200 - 300 - 1  # still inside the token's life, less the refresh margin
    assert (await channel.send(notice())).outcome is Outcome.DONE
    assert paths(served).count(TOKEN_PATH) == 1
    clock.now += 2  # now within the margin: fetch a new one before WeChat expires it
    assert (await channel.send(notice())).outcome is Outcome.DONE
    assert paths(served).count(TOKEN_PATH) == 2
    assert served.received[-1].query["access_token"] == ["token-2"]


@pytest.mark.parametrize("retire", ["expire_tokens", "invalidate_tokens"])
async def test_a_rejected_token_is_refreshed_and_the_send_retried_once(
    channel: WechatChannel, wechat: tuple[Served, WechatState], retire: str
) -> None:
    served, state = wechat
    assert (await channel.send(notice())).outcome is Outcome.DONE
    getattr(state, retire)()  # 42001 or 40001 for the cached token from now on
    delivery = await channel.send(notice(key="after-refresh"))
    assert delivery.outcome is Outcome.DONE, delivery.detail
    assert paths(served) == [TOKEN_PATH, SEND_PATH, SEND_PATH, TOKEN_PATH, SEND_PATH]
    assert [r.query["access_token"] for r in served.received if r.path == SEND_PATH] == [
        ["token-1"],
        ["token-1"],
        ["token-2"],
    ]
    assert len(state.delivered) == 2


async def test_a_token_still_rejected_after_refresh_is_retried_later(
    channel: WechatChannel, wechat: tuple[Served, WechatState]
) -> None:
    served, state = wechat
    state.fail("openid-a", 42001, 40001)  # both attempts of this call, whatever the token
    delivery = await channel.send(notice())
    assert delivery.outcome is Outcome.RETRY
    assert "40001" in delivery.detail
    assert paths(served) == [TOKEN_PATH, SEND_PATH, TOKEN_PATH, SEND_PATH]  # one refresh, not a loop


@pytest.mark.parametrize(
    ("scripted", "outcome"),
    [
        (43101, Outcome.DROP),
        (-1, Outcome.RETRY),
        ("HTTP500", Outcome.RETRY),
        ("SLOW:1.5", Outcome.RETRY),  # longer than the 0.5 s timeout
        (47003, Outcome.FAIL_OVER),
        (40037, Outcome.FAIL_OVER),
    ],
)
async def test_provider_answers_are_classified(
    channel: WechatChannel, wechat: tuple[Served, WechatState], scripted: int | str, outcome: Outcome
) -> None:
    served, state = wechat
    state.fail("openid-a", scripted)
    delivery = await channel.send(notice())
    assert delivery.outcome is outcome, delivery.detail
    assert paths(served) == [TOKEN_PATH, SEND_PATH]  # no retry inside the call
    assert state.delivered == []


async def test_not_subscribed_drops_that_user_only(
    channel: WechatChannel, wechat: tuple[Served, WechatState]
) -> None:
    _, state = wechat
    state.fail("no-grant", 43101)
    dropped = await channel.send(notice("no-grant"))
    sent = await channel.send(notice("has-grant"))
    assert dropped.outcome is Outcome.DROP and dropped.detail.startswith("errcode 43101")
    assert sent.outcome is Outcome.DONE
    assert [m["touser"] for m in state.delivered] == ["has-grant"]


@pytest.mark.parametrize(("scripted", "outcome"), [(-1, Outcome.RETRY), ("HTTP500", Outcome.RETRY)])
async def test_a_failed_token_fetch_is_retried_later(
    channel: WechatChannel, wechat: tuple[Served, WechatState], scripted: int | str, outcome: Outcome
) -> None:
    served, state = wechat
    state.token_script.append(scripted)
    assert (await channel.send(notice())).outcome is outcome
    assert paths(served) == [TOKEN_PATH]
    assert (await channel.send(notice())).outcome is Outcome.DONE


async def test_a_wrong_secret_fails_over(wechat: tuple[Served, WechatState]) -> None:
    served, state = wechat
    channel = WechatChannel(WechatConfig(state.appid, "wrong", base_url=served.url))
    try:
        delivery = await channel.send(notice())
    finally:
        await channel.aclose()
    assert delivery.outcome is Outcome.FAIL_OVER
    assert paths(served) == [TOKEN_PATH]


async def test_an_unreachable_api_is_retried_later() -> None:
    with serving(FakeWechat) as served:
        url = served.url  # the port is free again once the fake stops
    channel = WechatChannel(WechatConfig("wx", "s", base_url=url))
    try:
        delivery = await channel.send(notice())
    finally:
        await channel.aclose()
    assert delivery.outcome is Outcome.RETRY
    assert delivery.detail.startswith("transport")


async def test_an_answer_slower_in_all_than_the_timeout_but_never_silent_that_long_is_read() -> None:
    # The timeout counts each wait (to connect, for the next bytes), not the whole exchange: a
    # busy dispatcher's own lateness must not turn a message WeChat accepted into a retry, which
    # would be a second message.
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):  # until the channel closes the connection
            token = request.startswith(b"GET /cgi-bin/token")
            body = json.dumps(
                {"access_token": "t", "expires_in": 7200} if token else {"errcode": 0, "msgid": 7}
            )
            if not token:
                await asyncio.sleep(0.3)
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            await writer.drain()
            if not token:
                await asyncio.sleep(0.3)  # 0.6 s in all, never 0.5 s without a byte
            writer.write(body.encode())
            await writer.drain()

    async with raw_server(serve) as url:
        channel = WechatChannel(WechatConfig("wx", "s", base_url=url, timeout_s=0.5))
        try:
            delivery = await channel.send(notice())
        finally:
            await channel.aclose()
    assert (delivery.outcome, delivery.provider_id) == (Outcome.DONE, "7")
