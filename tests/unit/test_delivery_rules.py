"""Quiet hours, per-phone limits and backoff: the dispatcher's rules of time, without a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.bootstrap import build_runtime
from backend.notify_settings import NotificationSettingsError, load_notification_settings
from backend.settings import load_settings
from notifications.delivery_rules import QuietHours, RateLimit, backoff, free_at
from notifications.dispatcher import Dispatcher

CHANGSHA = "Asia/Shanghai"


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "ends"),
    [
        (utc(1, 13, 59), None),  # 21:59 in Changsha
        (utc(1, 14, 0), utc(2, 0, 0)),  # 22:00: until 08:00 the next morning
        (utc(1, 16, 0), utc(2, 0, 0)),  # midnight
        (utc(1, 23, 59), utc(2, 0, 0)),  # 07:59
        (utc(2, 0, 0), None),  # 08:00 sharp: awake
    ],
)
def test_quiet_hours_across_midnight_in_changsha(now: datetime, ends: datetime | None) -> None:
    assert QuietHours.parse("22:00-08:00", CHANGSHA).ends_at(now) == ends


def test_quiet_hours_within_a_day_and_none() -> None:
    lunch = QuietHours.parse("12:00-14:00", CHANGSHA)
    assert lunch.ends_at(utc(1, 4, 30)) == utc(1, 6, 0)
    assert lunch.ends_at(utc(1, 6, 0)) is None
    assert QuietHours.parse("off", CHANGSHA).ends_at(utc(1, 16)) is None


@pytest.mark.parametrize("bad", ["22:00", "24:00-08:00", "22-08", "22:00-8:00"])
def test_malformed_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="look"):
        QuietHours.parse(bad, CHANGSHA)


def test_rate_limits_parse_and_wait_for_the_oldest_send_to_leave_the_window() -> None:
    limits = RateLimit.parse_many("2/1h, 3/1d")
    assert limits == (RateLimit(2, timedelta(hours=1)), RateLimit(3, timedelta(days=1)))
    now = utc(1, 12)
    assert free_at([], limits, now) is None
    one = [now - timedelta(minutes=50)]
    assert free_at(one, limits, now) is None
    two = [*one, now - timedelta(minutes=10)]
    assert free_at(two, limits, now) == now + timedelta(minutes=10)  # the 50-minute-old one leaves at 1h
    three = [now - timedelta(hours=5), *two]
    # The hour frees at +10 min, but the day holds three until the 5-hour-old one leaves.
    assert free_at(three, limits, now) == now + timedelta(hours=19)
    assert RateLimit.parse_many("") == ()


@pytest.mark.parametrize("bad", ["5", "0/1h", "5/1w", "x/1h", "5/h"])
def test_malformed_rate_limits_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit.parse_many(bad)


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    assert backoff(1, 5, 3600, lambda: 0.0) == timedelta(seconds=2.5)
    assert backoff(1, 5, 3600, lambda: 1.0) == timedelta(seconds=5)
    assert backoff(3, 5, 3600, lambda: 1.0) == timedelta(seconds=20)
    assert backoff(30, 5, 3600, lambda: 1.0) == timedelta(seconds=3600)


def test_notification_settings_defaults_and_refusals() -> None:
    s = load_notification_settings({})
    assert s.order == ("wechat", "push", "sms") and s.sms_providers == ("aliyun", "tencent")
    assert s.quiet.ends_at(utc(1, 15)) == utc(2, 0)
    assert (s.fcm, s.wechat, s.aliyun, s.tencent) == (
        None,
        None,
        None,
        None,
    )  # nothing configured: inbox only
    custom = load_notification_settings(
        {
            "CITYPASS_NOTIFY_ORDER": "sms,push",
            "CITYPASS_TENCENT_SMS_SECRET_ID": "id",
            "CITYPASS_NOTIFY_QUIET_HOURS": "off",
        }
    )
    assert custom.order == ("sms", "push") and custom.tencent is not None and custom.aliyun is None
    for bad in (
        {"CITYPASS_NOTIFY_ORDER": "sms,sms"},
        {"CITYPASS_NOTIFY_ORDER": "inbox"},
        {"CITYPASS_NOTIFY_TIMEZONE": "Mars/Olympus"},
        {"CITYPASS_NOTIFY_SMS_LIMITS": "often"},
        {"CITYPASS_NOTIFY_MAX_ATTEMPTS": "0"},
    ):
        with pytest.raises(NotificationSettingsError):
            load_notification_settings(bad)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CITYPASS_NOTIFY_IN_FLIGHT", "2.5", "a whole number"),  # was silently 2
        ("CITYPASS_NOTIFY_LANES", "four", "a whole number"),
        ("CITYPASS_NOTIFY_BATCH", "1e3", "a whole number"),
        ("CITYPASS_NOTIFY_MAX_ATTEMPTS", "7.9", "a whole number"),
        ("CITYPASS_NOTIFY_DISPATCHER", "maybe", "1 or 0"),  # was silently off
        ("CITYPASS_NOTIFY_BACKOFF_SECONDS", "soon", "a number"),
    ],
)
def test_a_malformed_notification_setting_is_refused_with_its_name(name: str, value: str, says: str) -> None:
    with pytest.raises(NotificationSettingsError, match=f"{name} must be {says}, not '{value}'"):
        load_notification_settings({name: value})


def test_whole_numbers_and_flags_read_as_written() -> None:
    s = load_notification_settings(
        {
            "CITYPASS_NOTIFY_IN_FLIGHT": "48",
            "CITYPASS_NOTIFY_LANES": " 3 ",
            "CITYPASS_NOTIFY_DISPATCHER": "No",
        }
    )
    assert (s.in_flight, s.lanes, s.dispatch_with_consumers) == (48, 3, False)
    assert load_notification_settings({"CITYPASS_NOTIFY_DISPATCHER": "yes"}).dispatch_with_consumers is True


@pytest.mark.parametrize(
    ("setting", "with_consumers", "dispatcher", "runs"),
    [
        ("1", True, None, True),  # `serve` and `citypass worker`: beside the consumers
        ("0", True, None, False),  # workers that leave it to `citypass dispatcher`
        ("1", False, None, False),  # `serve --no-consumers`
        ("0", False, True, True),  # `citypass dispatcher`
    ],
)
def test_where_the_dispatcher_runs(
    setting: str, with_consumers: bool, dispatcher: bool | None, runs: bool
) -> None:

    settings = load_settings({"CITYPASS_NOTIFY_DISPATCHER": setting})
    runtime = build_runtime(
        settings, "postgresql://unused", with_consumers=with_consumers, dispatcher=dispatcher
    )
    dispatchers = [s for s in runtime.services if isinstance(s, Dispatcher)]  # the webhook worker aside
    assert len(dispatchers) == (1 if runs else 0)
