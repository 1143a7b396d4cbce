"""The rules of webhook subscriptions that need no database: what a target URL may be, and retry delays."""

from __future__ import annotations

from urllib.parse import urlsplit

from miniapp_api.problems import ProblemMap

MAX_URL_LENGTH = 2048
# A retry comes up to this fraction early, so receivers that failed together are not all hit together again.
JITTER = 0.1


class WebhookError(Exception):
    """A webhook request that cannot be carried out as asked."""


class WebhookNotFoundError(WebhookError):
    """No such subscription, or none the caller may see."""


class WebhookUrlError(WebhookError):
    """The target URL is not one deliveries may be sent to."""


class WebhookCursorError(WebhookError):
    """A start position the stream has not reached."""


def register_webhook_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(WebhookNotFoundError, 404, "webhook-not-found", "No such webhook subscription")
    problems.register(WebhookUrlError, 422, "webhook-url-invalid", "Webhook URL not accepted")
    problems.register(WebhookCursorError, 422, "webhook-cursor-invalid", "Position not in the stream")
    return problems


def check_url(url: str, *, allow_http: bool) -> str:
    """The URL as given, if deliveries may go there; WebhookUrlError says why not."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise WebhookUrlError("the URL contains whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookUrlError("the URL must be https:// (or http:// where this deployment allows it)")
    if scheme == "http" and not allow_http:
        raise WebhookUrlError("plain http:// is not allowed here: use https://")
    if not parts.hostname:
        raise WebhookUrlError("the URL names no host")
    if parts.username is not None or parts.password is not None:
        # They would be stored and shown in the clear; the shared secret is what authenticates.
        raise WebhookUrlError("the URL must not carry credentials")
    if parts.fragment:
        raise WebhookUrlError("the URL must not have a fragment")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise WebhookUrlError("the URL's port is not a number from 0 to 65535") from None
    return url


def retry_delay(failures: int, minimum: float, maximum: float, rng: float) -> float:
    """Seconds before the next try after `failures` consecutive failures (≥ 1); `rng` in [0, 1).

    minimum, 2 × minimum, 4 × minimum … capped at maximum, each up to JITTER early.
    """
    if failures < 1:
        return 0.0
    base: float = min(maximum, minimum * 2.0 ** min(failures - 1, 64))
    return base * (1 - JITTER * rng)
