"""The relay's rules that need no database: what an answer means, and when to try again.

Every message is retried until a partner acknowledges it; nothing is dropped. What
differs is how soon:
- a 2xx (202 accepted, 200 already had it) delivers the message;
- no answer, a 5xx, 408 or 429 is trouble that passes: back off exponentially,
  retry_min doubling up to retry_max, with jitter;
- any other answer (a 4xx such as 401 bad signature or 403 unknown partner, or a
  redirect) will not change by itself, but may after a key rotation or a fix to
  either city's partner configuration: retry at retry_max, with the error on show
  in the admin outbox. So does a partner we have no configuration for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

MESSAGES_PATH = "/federation/v1/messages"
# A retry comes up to this fraction early, so messages that failed together are not all sent together again.
JITTER = 0.1
_PASSING = frozenset({408, 429})


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # passing trouble: back off
    REFUSED = "refused"  # will not pass by itself: retry slowly


def classify(status: int | None) -> Verdict:
    """What an answer's status means; None is no answer at all (refused, reset, timed out)."""
    if status is None or status >= 500 or status in _PASSING:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    return Verdict.REFUSED


@dataclass(frozen=True, slots=True)
class RelayRules:
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    timeout_seconds: float = 10.0  # one POST, connecting to reading the answer
    poll_seconds: float = 1.0
    in_flight: int = 16  # messages one relay sends at once
    batch: int = 64  # messages claimed at most per round

    def __post_init__(self) -> None:
        if not 0 < self.retry_min_seconds <= self.retry_max_seconds:
            raise ValueError("retry_min_seconds must be positive and at most retry_max_seconds")

    @property
    def lease(self) -> timedelta:
        """Outlasts any one delivery: a request is cut off at the timeout, recording is quick.

        It is also how long a message sent by a relay that died mid-delivery waits before
        another relay sends it again, so it is kept short: a lease that did run out only
        means the message may be sent twice, and the receiver's inbox drops the second.
        """
        return timedelta(seconds=2 * self.timeout_seconds + 5)

    def delay(self, verdict: Verdict, failures: int, rng: float) -> float:
        """Seconds before the next try after `failures` consecutive failures (≥ 1); `rng` in [0, 1)."""
        if verdict is Verdict.DELIVERED:
            return 0.0
        if verdict is Verdict.REFUSED:
            return self.retry_max_seconds * (1 - JITTER * rng)
        return backoff_seconds(failures, self.retry_min_seconds, self.retry_max_seconds, rng)


def backoff_seconds(failures: int, minimum: float, maximum: float, rng: float) -> float:
    """minimum, 2 × minimum, 4 × minimum … capped at maximum, after 1, 2, 3 … failures; up to JITTER early."""
    doublings = min(max(failures, 1) - 1, 64)
    return min(maximum, minimum * 2.0**doublings) * (1 - JITTER * rng)


def messages_url(base_url: str) -> str:
    """Where a partner accepts messages, from its configured base URL (which may carry a path prefix)."""
    return base_url.rstrip("/") + MESSAGES_PATH
