"""Both SMS channels through the providers' real SDKs, against fake gateways on loopback ports."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from notifications.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig, never_connected
from notifications.channels.base import Channel, Message, Outcome, Reconciling
from notifications.channels.tencent_sms import TencentSmsChannel, TencentSmsConfig
from tests.fakes.aliyun_sms import AliyunSmsGateway, aliyun_gateway
from tests.fakes.loopback import Served, serving
from tests.fakes.sms_script import REPORT_FAIL, REPORT_PENDING, SERVER_ERROR, SLOW, SmsGateway, header
from tests.fakes.tencent_sms import TencentSmsGateway, tencent_gateway

pytestmark = pytest.mark.integration  # no database: real HTTP to fake providers

TIMEOUT_S = 0.5
SLOW_S = 1.5
NOW = datetime(2025, 6, 3, 1, 30, tzinfo=UTC)  # 09:30 on 3 June in Beijing


@pytest.fixture
def aliyun() -> Iterator[tuple[Served, SmsGateway]]:
    AliyunSmsGateway.state = aliyun_gateway(slow_seconds=SLOW_S)
    with serving(AliyunSmsGateway) as served:
        yield served, AliyunSmsGateway.state


@pytest.fixture
def tencent() -> Iterator[tuple[Served, SmsGateway]]:
    TencentSmsGateway.state = tencent_gateway(slow_seconds=SLOW_S)
    with serving(TencentSmsGateway) as served:
        yield served, TencentSmsGateway.state


def aliyun_config(served: Served) -> AliyunSmsConfig:
    url = urlsplit(served.url)
    return AliyunSmsConfig("ak-id", "ak-secret", "长沙通", url.netloc, url.scheme, TIMEOUT_S)


@pytest.fixture
async def aliyun_channel(aliyun: tuple[Served, SmsGateway]) -> AsyncIterator[AliyunSmsChannel]:
    channel = AliyunSmsChannel(aliyun_config(aliyun[0]))
    yield channel
    await channel.aclose()


@pytest.fixture
async def tencent_channel(tencent: tuple[Served, SmsGateway]) -> AsyncIterator[TencentSmsChannel]:
    url = urlsplit(tencent[0].url)
    config = TencentSmsConfig(
        "secret-id", "secret-key", "1400000000", "长沙通", endpoint=url.netloc, protocol=url.scheme,
        timeout_s=TIMEOUT_S,
    )  # fmt: skip
    channel = TencentSmsChannel(config)
    yield channel
    await channel.aclose()


def a_phone() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def sms(phone: str, template: str = "SMS_1234", key: str | None = None) -> Message:
    return Message(key or uuid.uuid4().hex, phone, template, {"1": "C-0427", "2": "受理"})


def a_minute_ago() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=1)


def lookups(served: Served, action: str, field: str) -> list[object]:
    """One parameter of each lookup the gateway was asked, in order (Aliyun: query; Tencent: body)."""
    actions = ("x-acs-action", "x-tc-action")
    asked = [request for request in served.received if action in [header(request, name) for name in actions]]
    return [request.query[field][0] if request.query else request.json()[field] for request in asked]


def test_both_channels_satisfy_the_port() -> None:
    channels: list[type[Channel]] = [AliyunSmsChannel, TencentSmsChannel]
    assert [channel.name for channel in channels] == ["aliyun-sms", "tencent-sms"]
    reconciling: list[type[Reconciling]] = [AliyunSmsChannel, TencentSmsChannel]  # checked by mypy
    assert all(callable(channel.was_sent) for channel in reconciling)


# --- Aliyun -------------------------------------------------------------------------------


async def test_aliyun_sends_the_message_with_our_key_as_out_id(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    served, state = aliyun
    phone = a_phone()
    delivery = await aliyun_channel.send(sms(phone, key="intent-7"))
    assert delivery.outcome is Outcome.DONE
    assert delivery.provider == "aliyun-sms"
    assert delivery.provider_id and delivery.provider_id.endswith("^0")
    (sent,) = state.sent
    assert (sent.phone, sent.template, sent.key) == (phone, "SMS_1234", "intent-7")
    assert sent.params == {"1": "C-0427", "2": "受理"}
    assert served.received[0].query["SignName"] == ["长沙通"]
    assert "ACS3-HMAC-SHA256" in served.received[0].headers.get("Authorization", "")
    assert state.delivered_per_key() == {"intent-7": 1}


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", Outcome.RETRY),
        ("isp.SYSTEM_ERROR", Outcome.RETRY),
        ("isv.MOBILE_NUMBER_ILLEGAL", Outcome.DROP),
        ("isv.TEMPLATE_MISSING_PARAMETERS", Outcome.FAIL_OVER),
        ("isv.SMS_TEMPLATE_ILLEGAL", Outcome.FAIL_OVER),
        ("isv.SMS_SIGNATURE_ILLEGAL", Outcome.FAIL_OVER),
        ("isv.AMOUNT_NOT_ENOUGH", Outcome.FAIL_OVER),  # unknown to us: let the other provider try
    ],
)
async def test_aliyun_classifies_the_answer_code(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel, code: str, outcome: Outcome
) -> None:
    _, state = aliyun
    phone = a_phone()
    state.script(phone, code)
    delivery = await aliyun_channel.send(sms(phone))
    assert (delivery.outcome, delivery.provider_id, delivery.ambiguous) == (outcome, None, False)
    assert delivery.detail.startswith(code)
    assert (await aliyun_channel.send(sms(phone))).outcome is Outcome.DONE  # the script ran out


async def test_aliyun_server_error_is_retried_later_and_was_not_sent(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    _, state = aliyun
    phone, since = a_phone(), a_minute_ago()
    state.script(phone, SERVER_ERROR)
    delivery = await aliyun_channel.send(sms(phone, key="down-1"))
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, False)  # the gateway said so
    assert "500" in delivery.detail
    assert len(state.sent) == 1  # the SDK did not retry behind our back
    assert await aliyun_channel.was_sent("down-1", phone, since) is False


async def test_aliyun_timeout_is_ambiguous_and_the_send_is_on_record(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    served, state = aliyun
    phone, since = a_phone(), a_minute_ago()
    state.script(phone, SLOW)
    started = asyncio.get_running_loop().time()
    delivery = await aliyun_channel.send(sms(phone, key="slow-1"))
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, True)
    assert asyncio.get_running_loop().time() - started < SLOW_S
    assert state.delivered_per_key() == {"slow-1": 1}  # the provider sent it anyway
    assert await aliyun_channel.was_sent("slow-1", phone, since) is True
    assert lookups(served, "QuerySendDetails", "PhoneNumber")[-1] == phone.removeprefix("+86")


async def test_aliyun_knows_no_other_key(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    phone, since = a_phone(), a_minute_ago()
    assert (await aliyun_channel.send(sms(phone, key="known-1"))).outcome is Outcome.DONE
    assert await aliyun_channel.was_sent("unknown-1", phone, since) is False
    assert await aliyun_channel.was_sent("known-1", a_phone(), since) is False  # another number


@pytest.mark.parametrize(("report", "sent"), [(REPORT_PENDING, True), (REPORT_FAIL, False)])
async def test_aliyun_a_send_counts_unless_it_failed(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel, report: str, sent: bool
) -> None:
    _, state = aliyun
    phone, since = a_phone(), a_minute_ago()
    await aliyun_channel.send(sms(phone, key="reported-1"))
    state.report("reported-1", report)
    assert await aliyun_channel.was_sent("reported-1", phone, since) is sent


@pytest.mark.parametrize("failure", [SERVER_ERROR, SLOW, "isv.BUSINESS_LIMIT_CONTROL"])
async def test_aliyun_cannot_say_when_the_lookup_fails(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel, failure: str
) -> None:
    _, state = aliyun
    phone, since = a_phone(), a_minute_ago()
    await aliyun_channel.send(sms(phone, key="sent-1"))
    state.fail_lookups(failure)
    assert await aliyun_channel.was_sent("sent-1", phone, since) is None
    assert await aliyun_channel.was_sent("sent-1", phone, since) is True  # once the gateway is back


async def test_aliyun_pages_through_the_days_sends(aliyun: tuple[Served, SmsGateway]) -> None:
    served, state = aliyun
    state.clock = lambda: NOW
    channel = AliyunSmsChannel(aliyun_config(served), clock=lambda: NOW)
    phone = a_phone()
    for n in range(60):
        state.record(phone, "SMS_1", {}, f"earlier-{n}", "OK")
    await channel.send(sms(phone, key="the-61st"))
    assert await channel.was_sent("the-61st", phone, NOW - timedelta(hours=1)) is True
    assert lookups(served, "QuerySendDetails", "CurrentPage") == ["1", "2"]
    assert await channel.was_sent("unknown-2", phone, NOW - timedelta(hours=1)) is False


@pytest.mark.parametrize(
    ("sent_at", "since", "dates", "found"),
    [
        # From since's day to today, stopping at the first day that has the send...
        (NOW - timedelta(days=2), NOW - timedelta(days=2, hours=1), ["20250601"], True),
        (NOW - timedelta(days=2), NOW - timedelta(days=1), ["20250602", "20250603"], False),
        # ...but never more than the last three days.
        (NOW - timedelta(days=2), NOW - timedelta(days=10), ["20250601"], True),
        (NOW - timedelta(days=5), NOW - timedelta(days=10), ["20250601", "20250602", "20250603"], False),
        # Days are Beijing's: 17:00 UTC on 1 June is 01:00 on 2 June there.
        (datetime(2025, 6, 1, 17, tzinfo=UTC), datetime(2025, 6, 1, 16, 30, tzinfo=UTC), ["20250602"], True),
    ],
)
async def test_aliyun_looks_through_the_send_dates_since(
    aliyun: tuple[Served, SmsGateway], sent_at: datetime, since: datetime, dates: list[str], found: bool
) -> None:
    served, state = aliyun
    state.clock = lambda: sent_at
    channel = AliyunSmsChannel(aliyun_config(served), clock=lambda: NOW)
    phone = a_phone()
    await channel.send(sms(phone, key="dated-1"))
    assert await channel.was_sent("dated-1", phone, since) is found
    assert lookups(served, "QuerySendDetails", "SendDate") == dates


async def test_aliyun_keeps_its_connection_between_calls(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    # The SDK's asyncio client opened a new connection (over HTTPS: a new SSL context loaded
    # with the CA bundle, about 49 ms of CPU) for every call; its pooled client does not.
    served, _ = aliyun
    phone = a_phone()
    for n in range(3):
        assert (await aliyun_channel.send(sms(phone, key=f"kept-{n}"))).outcome is Outcome.DONE
    assert await aliyun_channel.was_sent("kept-0", phone, a_minute_ago()) is True
    assert len({request.client for request in served.received}) == 1


async def test_aliyun_never_makes_a_call_late(aliyun: tuple[Served, SmsGateway]) -> None:
    # One thread, busy with a slow answer: the second send's time to start passes while it
    # waits. It is not made then, nor later (it could land after a lookup had found nothing).
    served, state = aliyun
    channel = AliyunSmsChannel(dataclasses.replace(aliyun_config(served), connections=1))
    slow, waiting = a_phone(), a_phone()
    state.script(slow, SLOW)
    try:
        first, second = await asyncio.gather(channel.send(sms(slow)), channel.send(sms(waiting)))
        await asyncio.sleep(SLOW_S)  # time for a late call to arrive, were one made
    finally:
        await channel.aclose()
    assert (first.outcome, first.ambiguous) == (Outcome.RETRY, True)  # sent, answered too late
    assert (second.outcome, second.ambiguous) == (Outcome.RETRY, False)
    assert second.detail.startswith("not sent")
    assert [sent.phone for sent in state.sent] == [slow]


def _refused() -> requests.exceptions.ConnectionError:
    refusal = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", refusal))  # type: ignore[arg-type]


def _wrapped(error: BaseException) -> Exception:
    """As the SDK raises it: its own error, holding only the text, with ours as the context."""
    try:
        try:
            raise error
        except OSError as inner:
            raise RuntimeError(str(inner)) from None
    except RuntimeError as outer:
        outer.__context__ = error
        return outer


@pytest.mark.parametrize(
    ("error", "before_sending"),
    [
        (_refused(), True),
        (requests.exceptions.ConnectTimeout("connect timed out"), True),
        (requests.exceptions.ReadTimeout("read timed out"), False),
        (requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", OSError(104))), False),
        (requests.exceptions.ConnectionError("no reason given"), False),
    ],
)
def test_aliyun_tells_a_failure_before_sending_from_one_after(error: OSError, before_sending: bool) -> None:
    assert never_connected(_wrapped(error)) is before_sending


async def test_aliyun_unreachable_gateway_is_retried_later() -> None:
    with serving(AliyunSmsGateway) as served:
        url = urlsplit(served.url)
    channel = AliyunSmsChannel(AliyunSmsConfig("id", "secret", "长沙通", url.netloc, "http", TIMEOUT_S))
    delivery = await channel.send(sms(a_phone()))
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, False)  # refused: nothing went out
    assert delivery.detail.startswith("transport")
    assert await channel.was_sent("any", a_phone(), a_minute_ago()) is None


# --- Tencent ------------------------------------------------------------------------------


async def test_tencent_sends_the_message_with_our_key_as_session_context(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    served, state = tencent
    phone = a_phone()
    delivery = await tencent_channel.send(sms(phone, template="1864410", key="intent-8"))
    assert delivery.outcome is Outcome.DONE
    assert delivery.provider == "tencent-sms"
    assert delivery.provider_id and delivery.provider_id.startswith("2028:")
    (sent,) = state.sent
    assert (sent.phone, sent.template, sent.key) == (phone, "1864410", "intent-8")
    assert sent.params == ["C-0427", "受理"]
    body = served.received[0].json()
    assert (body["SmsSdkAppId"], body["SignName"]) == ("1400000000", "长沙通")
    headers = {name.lower(): value for name, value in served.received[0].headers.items()}
    assert headers["authorization"].startswith("TC3-HMAC-SHA256 Credential=secret-id/")
    assert state.delivered_per_key() == {"intent-8": 1}


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("LimitExceeded.DeliveryFrequencyLimit", Outcome.RETRY),
        ("LimitExceeded.PhoneNumberDailyLimit", Outcome.RETRY),
        ("InvalidParameterValue.IncorrectPhoneNumber", Outcome.DROP),
        ("FailedOperation.TemplateIncorrectOrUnapproved", Outcome.FAIL_OVER),
        ("FailedOperation.SignatureIncorrectOrUnapproved", Outcome.FAIL_OVER),
        # request-level errors, answered as Response.Error for the whole call
        ("InternalError.Timeout", Outcome.RETRY),
        ("RequestLimitExceeded", Outcome.RETRY),
        ("AuthFailure.SecretIdNotFound", Outcome.FAIL_OVER),  # our credentials: the other provider
    ],
)
async def test_tencent_classifies_the_answer_code(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel, code: str, outcome: Outcome
) -> None:
    _, state = tencent
    phone = a_phone()
    state.script(phone, code)
    delivery = await tencent_channel.send(sms(phone))
    assert (delivery.outcome, delivery.provider_id, delivery.ambiguous) == (outcome, None, False)
    assert delivery.detail.startswith(code)
    assert (await tencent_channel.send(sms(phone))).outcome is Outcome.DONE


async def test_tencent_server_error_is_retried_later_and_was_not_sent(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    _, state = tencent
    phone, since = a_phone(), a_minute_ago()
    state.script(phone, SERVER_ERROR)
    delivery = await tencent_channel.send(sms(phone, key="down-2"))
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, False)
    assert delivery.detail.startswith("ServerNetworkError")
    assert len(state.sent) == 1
    assert await tencent_channel.was_sent("down-2", phone, since) is False


async def test_tencent_timeout_is_ambiguous_and_the_send_is_on_record(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    served, state = tencent
    phone, since = a_phone(), a_minute_ago()
    state.script(phone, SLOW)
    started = asyncio.get_running_loop().time()
    delivery = await tencent_channel.send(sms(phone, key="slow-2"))
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, True)
    assert delivery.detail.startswith("transport")
    assert asyncio.get_running_loop().time() - started < SLOW_S
    assert state.delivered_per_key() == {"slow-2": 1}
    assert await tencent_channel.was_sent("slow-2", phone, since) is True
    pull = "PullSmsSendStatusByPhoneNumber"
    asked = [lookups(served, pull, field) for field in ("PhoneNumber", "BeginTime")]
    assert asked == [[phone], [int(since.timestamp())]]
    assert (await tencent_channel.send(sms(phone))).outcome is Outcome.DONE  # the pool recovers


async def test_tencent_knows_no_other_key(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    phone, since = a_phone(), a_minute_ago()
    assert (await tencent_channel.send(sms(phone, key="known-2"))).outcome is Outcome.DONE
    assert await tencent_channel.was_sent("unknown-3", phone, since) is False
    assert await tencent_channel.was_sent("known-2", a_phone(), since) is False  # another number


async def test_tencent_a_failed_report_is_no_send(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    _, state = tencent
    phone, since = a_phone(), a_minute_ago()
    await tencent_channel.send(sms(phone, key="reported-2"))
    assert await tencent_channel.was_sent("reported-2", phone, since) is True
    state.report("reported-2", REPORT_FAIL)
    assert await tencent_channel.was_sent("reported-2", phone, since) is False


@pytest.mark.parametrize("failure", [SERVER_ERROR, SLOW, "RequestLimitExceeded", "InternalError.Timeout"])
async def test_tencent_cannot_say_when_the_lookup_fails(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel, failure: str
) -> None:
    _, state = tencent
    phone, since = a_phone(), a_minute_ago()
    await tencent_channel.send(sms(phone, key="sent-2"))
    state.fail_lookups(failure)
    assert await tencent_channel.was_sent("sent-2", phone, since) is None
    assert await tencent_channel.was_sent("sent-2", phone, since) is True  # once the gateway is back


async def test_tencent_pages_through_the_reports(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    served, state = tencent
    phone, since = a_phone(), a_minute_ago()
    for n in range(120):
        state.record(phone, "1864410", [], f"earlier-{n}", "Ok")
    await tencent_channel.send(sms(phone, key="the-121st"))
    assert await tencent_channel.was_sent("the-121st", phone, since) is True
    assert lookups(served, "PullSmsSendStatusByPhoneNumber", "Offset") == [0, 100]
    assert await tencent_channel.was_sent("unknown-4", phone, since) is False


async def test_tencent_sends_before_since_are_not_looked_at(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    _, state = tencent
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    state.clock = lambda: an_hour_ago
    phone = a_phone()
    await tencent_channel.send(sms(phone, key="old-1"))
    assert await tencent_channel.was_sent("old-1", phone, an_hour_ago + timedelta(minutes=30)) is False
    assert await tencent_channel.was_sent("old-1", phone, an_hour_ago - timedelta(minutes=1)) is True


async def test_tencent_unreachable_gateway_is_retried_later() -> None:
    with serving(TencentSmsGateway) as served:
        url = urlsplit(served.url)
    channel = TencentSmsChannel(TencentSmsConfig("id", "key", "1400000000", "长沙通", endpoint=url.netloc,
                                                 protocol="http", timeout_s=TIMEOUT_S))  # fmt: skip
    try:
        delivery = await channel.send(sms(a_phone()))
        was_sent = await channel.was_sent("any", a_phone(), a_minute_ago())
    finally:
        await channel.aclose()
    assert (delivery.outcome, delivery.ambiguous) == (Outcome.RETRY, False)  # refused: nothing went out
    assert was_sent is None


# --- Chaos for later end-to-end runs ------------------------------------------------------


@pytest.mark.parametrize("make", [aliyun_gateway, tencent_gateway])
def test_failure_rate_is_seeded_and_mixes_outages_with_slow_answers(make: Callable[..., SmsGateway]) -> None:
    def codes(seed: int) -> list[str]:
        state = make(failure_rate=0.3, seed=seed)
        return [state.next_code("+8613900000000") for _ in range(200)]

    first = codes(7)
    assert first == codes(7)
    assert first != codes(8)
    failures = [code for code in first if code in (SERVER_ERROR, SLOW)]
    assert 30 <= len(failures) <= 90
    assert {SERVER_ERROR, SLOW} <= set(failures)
