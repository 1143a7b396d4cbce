"""Both SMS channels through the providers' real SDKs, against fake gateways on loopback ports."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit

import pytest

from notifications.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig
from notifications.channels.base import Channel, Message, Outcome
from notifications.channels.tencent_sms import TencentSmsChannel, TencentSmsConfig
from tests.fakes.aliyun_sms import AliyunSmsGateway, aliyun_gateway
from tests.fakes.loopback import Served, serving
from tests.fakes.sms_script import SERVER_ERROR, SLOW, SmsGateway
from tests.fakes.tencent_sms import TencentSmsGateway, tencent_gateway

pytestmark = pytest.mark.integration  # no database: real HTTP to fake providers

TIMEOUT_S = 0.5
SLOW_S = 1.5


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


@pytest.fixture
async def aliyun_channel(aliyun: tuple[Served, SmsGateway]) -> AsyncIterator[AliyunSmsChannel]:
    url = urlsplit(aliyun[0].url)
    config = AliyunSmsConfig("ak-id", "ak-secret", "长沙通", url.netloc, url.scheme, TIMEOUT_S)
    channel = AliyunSmsChannel(config)
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


def test_both_channels_satisfy_the_port() -> None:
    channels: list[type[Channel]] = [AliyunSmsChannel, TencentSmsChannel]
    assert [channel.name for channel in channels] == ["aliyun-sms", "tencent-sms"]


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
    assert (delivery.outcome, delivery.provider_id) == (outcome, None)
    assert delivery.detail.startswith(code)
    assert (await aliyun_channel.send(sms(phone))).outcome is Outcome.DONE  # the script ran out


async def test_aliyun_server_error_is_retried_later(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    _, state = aliyun
    phone = a_phone()
    state.script(phone, SERVER_ERROR)
    delivery = await aliyun_channel.send(sms(phone))
    assert delivery.outcome is Outcome.RETRY
    assert "500" in delivery.detail
    assert len(state.sent) == 1  # the SDK did not retry behind our back


async def test_aliyun_timeout_is_retried_later(
    aliyun: tuple[Served, SmsGateway], aliyun_channel: AliyunSmsChannel
) -> None:
    _, state = aliyun
    phone = a_phone()
    state.script(phone, SLOW)
    started = asyncio.get_running_loop().time()
    delivery = await aliyun_channel.send(sms(phone, key="slow-1"))
    assert delivery.outcome is Outcome.RETRY
    assert asyncio.get_running_loop().time() - started < SLOW_S
    assert state.delivered_per_key() == {"slow-1": 1}  # the provider sent it anyway


async def test_aliyun_unreachable_gateway_is_retried_later() -> None:
    with serving(AliyunSmsGateway) as served:
        url = urlsplit(served.url)
    channel = AliyunSmsChannel(AliyunSmsConfig("id", "secret", "长沙通", url.netloc, "http", TIMEOUT_S))
    delivery = await channel.send(sms(a_phone()))
    assert delivery.outcome is Outcome.RETRY
    assert delivery.detail.startswith("transport")


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
    assert (delivery.outcome, delivery.provider_id) == (outcome, None)
    assert delivery.detail.startswith(code)
    assert (await tencent_channel.send(sms(phone))).outcome is Outcome.DONE


async def test_tencent_server_error_is_retried_later(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    _, state = tencent
    phone = a_phone()
    state.script(phone, SERVER_ERROR)
    delivery = await tencent_channel.send(sms(phone))
    assert delivery.outcome is Outcome.RETRY
    assert delivery.detail.startswith("ServerNetworkError")
    assert len(state.sent) == 1


async def test_tencent_timeout_is_retried_later(
    tencent: tuple[Served, SmsGateway], tencent_channel: TencentSmsChannel
) -> None:
    _, state = tencent
    phone = a_phone()
    state.script(phone, SLOW)
    started = asyncio.get_running_loop().time()
    delivery = await tencent_channel.send(sms(phone, key="slow-2"))
    assert delivery.outcome is Outcome.RETRY
    assert delivery.detail.startswith("transport")
    assert asyncio.get_running_loop().time() - started < SLOW_S
    assert state.delivered_per_key() == {"slow-2": 1}
    assert (await tencent_channel.send(sms(phone))).outcome is Outcome.DONE  # the pool recovers


async def test_tencent_unreachable_gateway_is_retried_later() -> None:
    with serving(TencentSmsGateway) as served:
        url = urlsplit(served.url)
    channel = TencentSmsChannel(TencentSmsConfig("id", "key", "1400000000", "长沙通", endpoint=url.netloc,
                                                 protocol="http", timeout_s=TIMEOUT_S))  # fmt: skip
    try:
        delivery = await channel.send(sms(a_phone()))
    finally:
        await channel.aclose()
    assert delivery.outcome is Outcome.RETRY


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
