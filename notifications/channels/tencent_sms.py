"""SMS through Tencent Cloud (sms 2021-01-11 SendSms), with the SDK's asyncio (httpx) client,
its requests carried by one pooled aiohttp session (aiohttp_transport.py).

Tencent answers twice over: a request-level `Response.Error` (the SDK raises it) when
the call as a whole was refused, and otherwise one `SendStatusSet` entry per number,
each with its own `Code`. We send to one number per call, so that entry is the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111.models import (
    PullSmsSendStatusByPhoneNumberRequest,
    PullSmsSendStatusByPhoneNumberResponse,
    SendSmsRequest,
)
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

from notifications.channels.aiohttp_transport import AiohttpTransport
from notifications.channels.base import Delivery, Message, Outcome

log = logging.getLogger(__name__)

PROVIDER = "tencent-sms"

# Transient on this provider: their faults, call-rate limits, and per-number send limits.
_RETRY_PREFIXES = (
    "InternalError",
    "RequestLimitExceeded",
    "ServerNetworkError",  # the SDK's name for a non-200 HTTP answer
    "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.PhoneNumber",  # ...DailyLimit, ...OneHourLimit, ...ThirtySecondLimit
)
# The recipient cannot be reached by SMS at this number.
_DROP = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberParseFail",
    }
)
# The request never left: sending again cannot send twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

# PullSmsSendStatusByPhoneNumber: at most 100 records a call, and 7 days back.
_LIMIT = 100
_MAX_PAGES = 10
_LOOKBACK = timedelta(days=7)


def classify(code: str) -> Outcome:
    """Everything not known to be transient or the recipient's is our setup (template,
    signature, app id, balance, credentials): the other provider may still get through."""
    if code == "Ok":
        return Outcome.DONE
    if code.startswith(_RETRY_PREFIXES):
        return Outcome.RETRY
    if code in _DROP:
        return Outcome.DROP
    return Outcome.FAIL_OVER


def template_params(variables: Mapping[str, str]) -> list[str]:
    """Tencent templates take positional {1}, {2}…: numeric keys are put in that order."""
    if all(key.isdigit() for key in variables):
        return [variables[key] for key in sorted(variables, key=int)]
    return list(variables.values())


@dataclass(frozen=True, slots=True)
class TencentSmsConfig:
    secret_id: str
    secret_key: str
    sdk_app_id: str  # SmsSdkAppId
    sign_name: str  # 短信签名, registered with the provider
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"  # host[:port]
    protocol: str = "https"
    timeout_s: float = 5.0  # per request
    # Connections kept open to the API: as many as calls the dispatcher lets run at once
    # (CITYPASS_NOTIFY_IN_FLIGHT).
    connections: int = 32


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TencentSmsChannel:
    """Holds one pooled HTTP client; `aclose()` it when the worker stops."""

    name = PROVIDER

    def __init__(self, config: TencentSmsConfig, clock: Callable[[], datetime] = _utc_now) -> None:
        self._config = config
        self._clock = clock
        http = HttpProfile(
            protocol=config.protocol, endpoint=config.endpoint, reqTimeout=config.timeout_s, keepAlive=True
        )
        self._client = SmsClient(
            Credential(config.secret_id, config.secret_key), config.region, ClientProfile(httpProfile=http)
        )
        # The SDK's client is httpx's with httpx's own transport; ours keeps the SDK's timeout.
        self._client.http_client = httpx.AsyncClient(
            timeout=config.timeout_s, transport=AiohttpTransport(config.connections)
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def send(self, message: Message) -> Delivery:
        request = SendSmsRequest()
        request.PhoneNumberSet = [message.address]
        request.SmsSdkAppId = self._config.sdk_app_id
        request.SignName = self._config.sign_name
        request.TemplateId = message.template
        request.TemplateParamSet = template_params(message.variables)
        request.SessionContext = message.key
        try:
            async with asyncio.timeout(self._config.timeout_s * 2):
                response = await self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or ""
            return Delivery(classify(code), PROVIDER, f"{code}: {exc.get_message()!r}")
        except _NOT_SENT as exc:
            log.warning("tencent sms could not connect for key %s: %r", message.key, exc)
            return Delivery(Outcome.RETRY, PROVIDER, f"transport: {exc!r}")
        except (httpx.HTTPError, TimeoutError) as exc:
            # Sent, perhaps: the connection was made before it timed out or dropped.
            log.warning("tencent sms transport error for key %s: %r", message.key, exc)
            return Delivery(Outcome.RETRY, PROVIDER, f"transport: {exc!r}", ambiguous=True)
        except (ValueError, KeyError) as exc:
            # A 200 we cannot read may have said the message went out.
            log.warning("tencent sms answered something unreadable for key %s: %r", message.key, exc)
            return Delivery(Outcome.RETRY, PROVIDER, f"unreadable answer: {exc!r}", ambiguous=True)
        statuses = response.SendStatusSet or []
        if not statuses:
            detail = f"no SendStatusSet (request {response.RequestId})"
            return Delivery(Outcome.RETRY, PROVIDER, detail, ambiguous=True)
        status = statuses[0]
        code = status.Code or ""
        outcome = classify(code)
        return Delivery(
            outcome,
            PROVIDER,
            f"{code}: {status.Message}",
            provider_id=status.SerialNo if outcome is Outcome.DONE else None,
        )

    async def was_sent(self, key: str, address: str, since: datetime) -> bool | None:
        """Pages through the number's send reports from `since` (at most 7 days back) to now."""
        now = self._clock()
        request = PullSmsSendStatusByPhoneNumberRequest()
        request.PhoneNumber = address
        request.SmsSdkAppId = self._config.sdk_app_id
        request.BeginTime = int(max(since, now - _LOOKBACK).timestamp())
        request.EndTime = int(now.timestamp())
        request.Limit = _LIMIT
        seen: set[str] = set()
        for page in range(_MAX_PAGES):
            request.Offset = page * _LIMIT
            response = await self._pull(request)
            if response is None:
                return None
            statuses = response.PullSmsSendStatusSet or []
            if any(status.SessionContext == key and status.ReportStatus != "FAIL" for status in statuses):
                return True
            if len(statuses) < _LIMIT:
                return False
            serials = {status.SerialNo for status in statuses}
            if serials <= seen:
                # Tencent documents Offset as "fixed at 0 for now": a page over again means it
                # ignored ours, and what lies beyond the first page cannot be seen.
                log.warning("tencent sms: the report pull for %s ignored Offset %d", address, request.Offset)
                return None
            seen |= serials
        log.warning("tencent sms: more than %d pages of reports for %s", _MAX_PAGES, address)
        return None

    async def _pull(
        self, request: PullSmsSendStatusByPhoneNumberRequest
    ) -> PullSmsSendStatusByPhoneNumberResponse | None:
        """One page of the number's send reports, or None (logged) if it could not be had."""
        try:
            async with asyncio.timeout(self._config.timeout_s * 2):
                return await self._client.PullSmsSendStatusByPhoneNumber(request)
        except (TencentCloudSDKException, httpx.HTTPError, TimeoutError, ValueError, KeyError) as exc:
            log.warning("tencent sms: no send reports for %s: %r", request.PhoneNumber, exc)
            return None
