"""The dispatcher and its channels, built from the notification settings."""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg
from google.auth.credentials import AnonymousCredentials, Credentials

from backend.notify_settings import NotificationSettings
from backend.runtime import utc_now
from notifications.address_book import Decode, PhoneDigest
from notifications.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig
from notifications.channels.base import Channel
from notifications.channels.fcm import FcmChannel, FcmConfig
from notifications.channels.tencent_sms import TencentSmsChannel, TencentSmsConfig
from notifications.channels.wechat import WechatChannel, WechatConfig
from notifications.dispatcher import Channels, Dispatcher, DispatchRules

log = logging.getLogger(__name__)


def dispatch_rules(s: NotificationSettings) -> DispatchRules:
    return DispatchRules(
        order=s.order,
        quiet=s.quiet,
        sms_limits=s.sms_limits,
        max_attempts=s.max_attempts,
        backoff_base=s.backoff_base,
        backoff_cap=s.backoff_cap,
        batch=s.batch,
        lanes=s.lanes,
        lease=s.lease,
        poll_seconds=s.poll_seconds,
        settle_after=s.settle_after,
        in_flight=s.in_flight,
    )


def build_channels(s: NotificationSettings) -> Channels:
    """The configured channels only; each is logged, so an operator sees what will be tried."""
    push: Channel | None = None
    if s.fcm is not None:
        push = FcmChannel(
            FcmConfig(
                s.fcm.project_id,
                _credentials(s.fcm.credentials),
                s.fcm.endpoint,
                s.send_timeout,
                connections=s.in_flight,
            )
        )
    wechat: Channel | None = None
    if s.wechat is not None:
        wechat = WechatChannel(
            WechatConfig(
                s.wechat.appid,
                s.wechat.secret,
                page=s.wechat.page,
                base_url=s.wechat.base_url,
                timeout_s=s.send_timeout,
                connections=s.in_flight,
            )
        )
    providers: dict[str, Channel] = {}
    if s.aliyun is not None:
        a = s.aliyun
        providers["aliyun"] = AliyunSmsChannel(
            AliyunSmsConfig(
                a.access_key_id,
                a.access_key_secret,
                a.sign_name,
                a.endpoint,
                a.protocol,
                s.send_timeout,
                connections=s.in_flight,
            )
        )
    if s.tencent is not None:
        t = s.tencent
        providers["tencent"] = TencentSmsChannel(
            TencentSmsConfig(
                t.secret_id,
                t.secret_key,
                t.sdk_app_id,
                t.sign_name,
                t.region,
                t.endpoint,
                t.protocol,
                s.send_timeout,
                connections=s.in_flight,
            )
        )
    sms = [providers[name] for name in s.sms_providers if name in providers]
    log.info(
        "notification channels: wechat %s, push %s, sms %s; order %s",
        "on" if wechat else "off",
        "on" if push else "off",
        ",".join(c.name for c in sms) or "off",
        ",".join(s.order),
    )
    return Channels(wechat=wechat, push=push, sms=sms)


def _credentials(spec: str) -> Credentials | None:
    if spec == "anonymous":
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if not spec:
        return None
    from firebase_admin import credentials  # a key file: the SDK turns it into google.auth credentials

    key_file: Credentials = credentials.Certificate(spec).get_credential()
    return key_file


def build_dispatcher(
    s: NotificationSettings, pool: Callable[[], asyncpg.Pool], decode: Decode, data_key: bytes
) -> Dispatcher:
    return Dispatcher(
        pool,
        build_channels(s),
        dispatch_rules(s),
        decode=decode,
        phone_digest=PhoneDigest.from_data_key(data_key),
        clock=utc_now,
    )
