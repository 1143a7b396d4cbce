"""How long a waiting visitor has left, and when to tell them their turn is near: pure arithmetic.

DOMAIN.md's rule is wait = position × recent average service time ÷ active windows,
with position counted as the tickets ahead. So the next to be called is told 0: the
estimate ignores how far into their service the visitors at the windows already
are, which keeps it explainable to a visitor and to a clerk.
"""

from __future__ import annotations

from collections.abc import Sequence

# Five minutes: a plausible service time until a queue has served someone today.
DEFAULT_SERVICE_SECONDS = 300.0

# DOMAIN.md: "your turn is near" at 3 ahead.
NEAR_TURN_AHEAD = 3


def estimated_wait(
    ahead: int,
    recent_service_seconds: Sequence[float],
    active_windows: int,
    default_service_seconds: float = DEFAULT_SERVICE_SECONDS,
) -> float | None:
    """Seconds until the visitor is called; None when no window serving the queue is open."""
    if ahead < 0:
        raise ValueError(f"ahead must not be negative, not {ahead}")
    if active_windows <= 0:
        return None
    average = (
        sum(recent_service_seconds) / len(recent_service_seconds)
        if recent_service_seconds
        else default_service_seconds
    )
    return ahead * average / active_windows


def turn_is_near(before: int, after: int, threshold: int = NEAR_TURN_AHEAD) -> bool:
    """Whether the count ahead has just dropped to the threshold or below, so the notice goes once."""
    return after <= threshold < before
