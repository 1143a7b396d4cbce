"""SMS through Alibaba Cloud (Dysmsapi SendSms), with the SDK's own asyncio client.

Dysmsapi answers most refusals with HTTP 200 and a `Code` other than "OK"; HTTP
errors and transport failures reach us as SDK exceptions. Both are classified here,
and nothing is retried inside the SDK: retrying is the dispatcher's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import SendSmsRequest
from alibabacloud_tea_openapi.exceptions import ServerException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions
from Tea.exceptions import TeaException

from notifications.channels.base import Delivery, Message, Outcome

log = logging.getLogger(__name__)

PROVIDER = "aliyun-sms"

# Codes worth trying again later on this provider: rate limits per number, and their own faults.
_RETRY = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "isp.SYSTEM_ERROR"})
# The number itself is wrong: no provider will reach it.
_DROP = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})


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


@dataclass(frozen=True, slots=True)
class AliyunSmsConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str  # 短信签名, registered with the provider
    endpoint: str = "dysmsapi.aliyuncs.com"  # host[:port]
    protocol: str = "https"
    timeout_s: float = 5.0  # for connecting, and again for reading the answer


class AliyunSmsChannel:
    name = PROVIDER

    def __init__(self, config: AliyunSmsConfig) -> None:
        self._config = config
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

    async def aclose(self) -> None:
        """Nothing to release: the SDK opens an HTTP session per call."""

    async def send(self, message: Message) -> Delivery:
        request = SendSmsRequest(
            phone_numbers=message.address,
            sign_name=self._config.sign_name,
            template_code=message.template,
            template_param=json.dumps(dict(message.variables), ensure_ascii=False),
            out_id=message.key,
        )
        # Without retry_options in its Config the SDK tries once. The outer deadline
        # guards against a stall its socket timeouts do not see.
        runtime = RuntimeOptions()
        try:
            async with asyncio.timeout(self._config.timeout_s * 2):
                response = await self._client.send_sms_with_options_async(request, runtime)
        except TimeoutError:
            log.warning("aliyun sms timed out for key %s", message.key)
            return Delivery(Outcome.RETRY, PROVIDER, "timeout")
        except ServerException as exc:
            return Delivery(Outcome.RETRY, PROVIDER, f"HTTP {exc.status_code} {exc.code}: {exc.message}")
        except TeaException as exc:
            # Client-side HTTP errors carry a provider code; transport failures carry none.
            code = getattr(exc, "code", None)
            if code:
                return Delivery(classify(code), PROVIDER, f"{code}: {exc.message}")
            log.warning("aliyun sms transport error for key %s: %s", message.key, exc)
            return Delivery(Outcome.RETRY, PROVIDER, f"transport: {exc}")
        body = response.body
        code = body.code or ""
        outcome = classify(code)
        return Delivery(
            outcome,
            PROVIDER,
            f"{code}: {body.message}",
            provider_id=body.biz_id if outcome is Outcome.DONE else None,
        )
