"""SMS through Alibaba Cloud (Dysmsapi SendSms), with the SDK's synchronous client in
threads of the channel's own.

Dysmsapi answers most refusals with HTTP 200 and a `Code` other than "OK"; HTTP
errors and transport failures reach us as SDK exceptions. Both are classified here,
and nothing is retried inside the SDK: retrying is the dispatcher's job.

Why not the SDK's asyncio client: it builds a new aiohttp session, connector and TCP
connection for every call, and over HTTPS (the provider's only real endpoint) a new SSL
context loaded with certifi's CA bundle too: about 49 ms of CPU per call on our machine,
which would cap a dispatcher near 20 texts a second. The synchronous client keeps one
pooled `requests` session per endpoint, so connections (and their TLS) are reused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import requests
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import (
    QuerySendDetailsRequest,
    QuerySendDetailsResponseBody,
    SendSmsRequest,
)
from alibabacloud_tea_openapi.exceptions import ServerException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions
from Tea.exceptions import TeaException
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from domain.case.checks import BEIJING
from notifications.channels.base import Delivery, Message, Outcome

log = logging.getLogger(__name__)

_T = TypeVar("_T")

PROVIDER = "aliyun-sms"

# Codes worth trying again later on this provider: rate limits per number, and their own faults.
_RETRY = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isp.SYSTEM_ERROR"})
# The number itself is wrong: no provider will reach it.
_DROP = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})

# QuerySendDetails: one SendDate (Beijing time) per call, at most 50 records a page.
_DAYS_BACK = 3  # SendDates looked through at most, today included
_PAGE_SIZE = 50
_MAX_PAGES = 20  # per day: beyond 1000 sends to one number in a day we would rather not say
_FAILED = "2"  # SendStatus: 1 waiting for the receipt, 2 failed, 3 received


def classify(code: str) -> Outcome:
    """Everything not known to be transient or the recipient's is our setup (template,
    signature, balance, credentials): the other provider may still get through."""
    if code == "OK":
        return Outcome.DONE
    if code in _RETRY or code.startswith("Throttling"):
        return Outcome.RETRY
    if code in _DROP:
        return Outcome.DROP
    return Outcome.FAIL_OVER


def query_number(address: str) -> str:
    """QuerySendDetails wants a mainland number bare (11 digits), any other with its country
    code and no "+"; SendSms takes our E.164 "+86…" as it is."""
    digits = address.removeprefix("+")
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def send_dates(since: datetime, now: datetime) -> list[date]:
    """The Beijing days from `since` to `now`, no more than the last `_DAYS_BACK`."""
    today = now.astimezone(BEIJING).date()
    first = min(max(since.astimezone(BEIJING).date(), today - timedelta(days=_DAYS_BACK - 1)), today)
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def never_connected(exc: BaseException) -> bool:
    """Whether a transport failure came before any request could leave (refused, no route,
    connect timeout). The SDK hides the `requests` error under two wrappers and keeps only
    its text, so look through the chain for it, then at what urllib3 said went wrong."""
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, requests.exceptions.ConnectTimeout):
            return True
        if isinstance(cause, requests.exceptions.ConnectionError):
            reason = getattr(cause.args[0], "reason", None) if cause.args else None
            return isinstance(reason, NewConnectionError | ConnectTimeoutError)
        cause = getattr(cause, "inner_exception", None) or cause.__cause__ or cause.__context__
    return False


@dataclass(frozen=True, slots=True)
class AliyunSmsConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str  # 短信签名, registered with the provider
    endpoint: str = "dysmsapi.aliyuncs.com"  # host[:port]
    protocol: str = "https"
    timeout_s: float = 5.0  # for connecting, and again for reading the answer
    # Calls under way at once, each in a thread holding a kept-alive connection: as many as
    # calls the dispatcher lets run at once (CITYPASS_NOTIFY_IN_FLIGHT).
    connections: int = 32


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _NotStarted(Exception):
    """A call waited for one of the channel's threads past its time and was not made."""


class AliyunSmsChannel:
    name = PROVIDER

    def __init__(self, config: AliyunSmsConfig, clock: Callable[[], datetime] = _utc_now) -> None:
        self._config = config
        self._clock = clock
        millis = int(config.timeout_s * 1000)
        self._client = Client(
            Config(
                access_key_id=config.access_key_id,
                access_key_secret=config.access_key_secret,
                endpoint=config.endpoint,
                protocol=config.protocol,
                connect_timeout=millis,
                read_timeout=millis,
            )
        )
        self._threads = ThreadPoolExecutor(config.connections, thread_name_prefix="aliyun-sms")

    async def aclose(self) -> None:
        """The threads end; the SDK's pooled session is its own, shared by the process."""
        self._threads.shutdown(wait=False)

    def _runtime(self) -> RuntimeOptions:
        # Without retry options the SDK tries once; the pool keeps a connection per thread.
        return RuntimeOptions(max_idle_conns=self._config.connections)

    async def _call(self, method: Callable[..., _T], *args: Any) -> _T:
        """`method` in one of the channel's threads, waited for to its end.

        A call that has started is never left behind: still running, it could send after the
        dispatcher had looked its key up, found nothing and sent again. Its socket timeouts
        (connecting, then each read) end it. A call still waiting for a thread when its time is
        up is not made at all (`_NotStarted`), so nothing is left to send late.
        """
        latest_start = time.monotonic() + self._config.timeout_s

        def run() -> _T:
            if time.monotonic() > latest_start:
                raise _NotStarted
            return method(*args)

        return await asyncio.get_running_loop().run_in_executor(self._threads, run)

    async def send(self, message: Message) -> Delivery:
        request = SendSmsRequest(
            phone_numbers=message.address,
            sign_name=self._config.sign_name,
            template_code=message.template,
            template_param=json.dumps(dict(message.variables), ensure_ascii=False),
            out_id=message.key,
        )
        try:
            response = await self._call(self._client.send_sms_with_options, request, self._runtime())
        except _NotStarted:
            log.warning("aliyun sms: no thread was free in time for key %s; not sent", message.key)
            return Delivery(Outcome.RETRY, PROVIDER, "not sent: the channel had no thread free in time")
        except ServerException as exc:
            # An answer, though a 5xx one: the gateway says it did not send.
            return Delivery(Outcome.RETRY, PROVIDER, f"HTTP {exc.status_code} {exc.code}: {exc.message}")
        except TeaException as exc:
            # Client-side HTTP errors carry a provider code; transport failures carry none.
            code = getattr(exc, "code", None)
            if code:
                return Delivery(classify(code), PROVIDER, f"{code}: {exc.message}")
            log.warning("aliyun sms transport error for key %s: %s", message.key, exc)
            return Delivery(Outcome.RETRY, PROVIDER, f"transport: {exc}", ambiguous=not never_connected(exc))
        body = response.body
        code = body.code or ""
        outcome = classify(code)
        return Delivery(
            outcome,
            PROVIDER,
            f"{code}: {body.message}",
            provider_id=body.biz_id if outcome is Outcome.DONE else None,
        )

    async def was_sent(self, key: str, address: str, since: datetime) -> bool | None:
        """Looks through QuerySendDetails day by day. The window is whole Beijing days: an
        earlier send on `since`'s day counts, as any send carrying `key` is this message."""
        number = query_number(address)
        for day in send_dates(since, self._clock()):
            for page in range(1, _MAX_PAGES + 1):
                body = await self._details(number, day, page)
                if body is None:
                    return None
                dtos = body.sms_send_detail_dtos
                records = (dtos.sms_send_detail_dto if dtos else None) or []
                if any(record.out_id == key and str(record.send_status) != _FAILED for record in records):
                    return True
                if len(records) < _PAGE_SIZE or page * _PAGE_SIZE >= _total(body, page):
                    break
            else:
                log.warning("aliyun sms: more than %d pages of sends to one number on %s", _MAX_PAGES, day)
                return None
        return False

    async def _details(self, number: str, day: date, page: int) -> QuerySendDetailsResponseBody | None:
        """One page of the day's sends to `number`, or None (logged) if it could not be had."""
        request = QuerySendDetailsRequest(
            phone_number=number, send_date=day.strftime("%Y%m%d"), page_size=_PAGE_SIZE, current_page=page
        )
        try:
            response = await self._call(
                self._client.query_send_details_with_options, request, self._runtime()
            )
        except (_NotStarted, TeaException) as exc:
            log.warning("aliyun sms: no send details for %s on %s: %r", number, day, exc)
            return None
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("aliyun sms: unreadable send details for %s on %s: %r", number, day, exc)
            return None
        body = response.body
        if body is None or body.code != "OK":
            log.warning("aliyun sms: no send details for %s on %s: %s", number, day, body and body.code)
            return None
        return body


def _total(body: QuerySendDetailsResponseBody, page: int) -> int:
    """TotalCount comes as a string; without it, assume there may be another page."""
    try:
        return int(body.total_count)
    except (TypeError, ValueError):
        return (page + 1) * _PAGE_SIZE
