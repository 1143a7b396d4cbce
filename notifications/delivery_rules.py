"""The dispatcher's rules of time, pure: quiet hours, per-phone limits and retry backoff.

Every function takes the time it reasons about; none reads a clock, so tests can put
the dispatcher at 23:59 in Changsha without waiting for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of local time in which non-urgent push and SMS wait; start == end means none."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str) -> QuietHours:
        """ "22:00-08:00" in the named zone; "" or "off" for no quiet hours."""
        if text.strip().lower() in ("", "off"):
            return cls(time(0), time(0), ZoneInfo(zone))
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"quiet hours look like 22:00-08:00, not {text!r}")
        return cls(_clock(start), _clock(end), ZoneInfo(zone))

    def ends_at(self, now: datetime) -> datetime | None:
        """When the quiet hours around `now` end (in UTC); None when `now` is outside them."""
        if self.start == self.end:
            return None
        local = now.astimezone(self.zone)
        at = local.time()
        within_a_day = self.start < self.end  # 12:00-14:00, not 22:00-08:00 (across midnight)
        inside = self.start <= at < self.end if within_a_day else at >= self.start or at < self.end
        if not inside:
            return None
        day = local.date() if at < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, self.zone).astimezone(UTC)


def _clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if match is None:
        raise ValueError(f"a time of day looks like 08:00, not {text!r}")
    return time(int(match[1]), int(match[2]))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` messages to one number within any `window`."""

    count: int
    window: timedelta

    @classmethod
    def parse_many(cls, text: str) -> tuple[RateLimit, ...]:
        """ "5/1h,20/1d": count/window pairs, the window in s, m, h or d; "" or "off" for no limit."""
        if text.strip().lower() == "off":
            return ()
        limits = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            count, sep, window = part.partition("/")
            match = re.fullmatch(r"(\d+)([smhd])", window.strip())
            if not sep or not count.strip().isdigit() or match is None or int(count) < 1:
                raise ValueError(f"a rate limit looks like 5/1h, not {part!r}")
            unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
            limits.append(cls(int(count), timedelta(seconds=int(match[1]) * unit)))
        return tuple(limits)


def free_at(sent: Sequence[datetime], limits: Sequence[RateLimit], now: datetime) -> datetime | None:
    """None if one more message may go now; else the first moment every limit allows one."""
    wait: datetime | None = None
    for limit in limits:
        recent = sorted(t for t in sent if t > now - limit.window)
        if len(recent) < limit.count:
            continue
        # The next send fits once enough of these have left the window.
        frees = recent[len(recent) - limit.count] + limit.window
        wait = frees if wait is None else max(wait, frees)
    return wait


def backoff(attempt: int, base: float, cap: float, rng: Callable[[], float]) -> timedelta:
    """The wait before trying again after `attempt` failures: doubling from `base`, at most `cap`.

    Half of it is fixed and half random ("equal jitter"): retries of many messages
    that failed together spread out, yet none comes back at once.
    """
    delay = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return timedelta(seconds=delay / 2 + rng() * delay / 2)
