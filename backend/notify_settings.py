"""Notification settings: the delivery rules, and each provider, configured or left out.

A provider is configured when its credentials are set; a channel without one is
never tried, and a notification nobody can be reached for ends in the in-app inbox.
So a development machine (no credentials at all) runs the whole pipeline and sends
nothing out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from backend.env_reader import EnvReader
from notifications.delivery_rules import QuietHours, RateLimit
from notifications.dispatcher import EXTERNAL


class NotificationSettingsError(ValueError):
    """A notification setting is malformed."""


@dataclass(frozen=True, slots=True)
class FcmSettings:
    project_id: str
    endpoint: str | None  # None: Google's FCM
    credentials: str  # "": application default credentials; "anonymous": none (a local fake); else a key file


@dataclass(frozen=True, slots=True)
class WechatSettings:
    appid: str
    secret: str = field(repr=False)
    base_url: str
    page: str


@dataclass(frozen=True, slots=True)
class AliyunSmsSettings:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    sign_name: str
    endpoint: str
    protocol: str


@dataclass(frozen=True, slots=True)
class TencentSmsSettings:
    secret_id: str
    secret_key: str = field(repr=False)
    sdk_app_id: str
    sign_name: str
    region: str
    endpoint: str
    protocol: str


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    order: tuple[str, ...]
    sms_providers: tuple[str, ...]
    quiet: QuietHours
    sms_limits: tuple[RateLimit, ...]
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    batch: int
    lanes: int
    lease: timedelta
    poll_seconds: float
    settle_after: timedelta
    send_timeout: float  # seconds any one provider call may take
    in_flight: int  # calls under way at once per channel or SMS provider
    dispatch_with_consumers: bool  # run the dispatcher in every consumer-running process
    fcm: FcmSettings | None
    wechat: WechatSettings | None
    aliyun: AliyunSmsSettings | None
    tencent: TencentSmsSettings | None


def load_notification_settings(env: Mapping[str, str]) -> NotificationSettings:
    read = EnvReader(env, NotificationSettingsError)
    text, integer, number, flag = read.text, read.integer, read.number, read.flag

    def names(name: str, default: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        found = tuple(n.strip() for n in text(name, default).split(",") if n.strip())
        if not found or len(set(found)) != len(found) or set(found) - set(allowed):
            raise NotificationSettingsError(
                f"CITYPASS_{name} lists some of {', '.join(allowed)}, each once, not {text(name, default)!r}"
            )
        return found

    try:
        quiet = QuietHours.parse(
            text("NOTIFY_QUIET_HOURS", "22:00-08:00"), text("NOTIFY_TIMEZONE", "Asia/Shanghai")
        )
        limits = RateLimit.parse_many(text("NOTIFY_SMS_LIMITS", "5/1h,20/1d"))
    except (ValueError, KeyError) as exc:  # ZoneInfo raises a KeyError subclass for an unknown zone
        raise NotificationSettingsError(f"notification timing: {exc}") from None
    fcm_project = text("FCM_PROJECT_ID")
    wechat_appid = text("WECHAT_APPID")
    aliyun_key = text("ALIYUN_SMS_ACCESS_KEY_ID")
    tencent_id = text("TENCENT_SMS_SECRET_ID")
    return NotificationSettings(
        order=names("NOTIFY_ORDER", ",".join(EXTERNAL), EXTERNAL),
        sms_providers=names("NOTIFY_SMS_PROVIDERS", "aliyun,tencent", ("aliyun", "tencent")),
        quiet=quiet,
        sms_limits=limits,
        max_attempts=integer("NOTIFY_MAX_ATTEMPTS", 10, 1, 1000),
        backoff_base=number("NOTIFY_BACKOFF_SECONDS", 5.0, 0.001, 3600),
        backoff_cap=number("NOTIFY_BACKOFF_MAX_SECONDS", 3600.0, 0.001, 86400),
        batch=integer("NOTIFY_BATCH", 100, 1, 10_000),
        lanes=integer("NOTIFY_LANES", 2, 1, 64),
        lease=timedelta(seconds=number("NOTIFY_LEASE_SECONDS", 300, 3, 86400)),
        poll_seconds=number("NOTIFY_POLL_SECONDS", 1.0, 0.001, 3600),
        settle_after=timedelta(seconds=number("NOTIFY_SETTLE_SECONDS", 600, 0, 86400)),
        send_timeout=number("NOTIFY_SEND_TIMEOUT_SECONDS", 5.0, 0.05, 120),
        in_flight=integer("NOTIFY_IN_FLIGHT", 32, 1, 1000),
        dispatch_with_consumers=flag("NOTIFY_DISPATCHER", True),
        fcm=FcmSettings(fcm_project, text("FCM_ENDPOINT") or None, text("FCM_CREDENTIALS"))
        if fcm_project
        else None,
        wechat=WechatSettings(
            wechat_appid,
            text("WECHAT_SECRET"),
            text("WECHAT_BASE_URL", "https://api.weixin.qq.com"),
            text("WECHAT_PAGE", "pages/index/index"),
        )
        if wechat_appid
        else None,
        aliyun=AliyunSmsSettings(
            aliyun_key,
            text("ALIYUN_SMS_ACCESS_KEY_SECRET"),
            text("ALIYUN_SMS_SIGN_NAME", "长沙政务服务"),
            text("ALIYUN_SMS_ENDPOINT", "dysmsapi.aliyuncs.com"),
            text("ALIYUN_SMS_PROTOCOL", "https"),
        )
        if aliyun_key
        else None,
        tencent=TencentSmsSettings(
            tencent_id,
            text("TENCENT_SMS_SECRET_KEY"),
            text("TENCENT_SMS_APP_ID"),
            text("TENCENT_SMS_SIGN_NAME", "长沙政务服务"),
            text("TENCENT_SMS_REGION", "ap-guangzhou"),
            text("TENCENT_SMS_ENDPOINT", "sms.tencentcloudapi.com"),
            text("TENCENT_SMS_PROTOCOL", "https"),
        )
        if tencent_id
        else None,
    )
