"""What every channel takes and answers: one rendered message in, one classified outcome out.

The dispatcher (not here yet) picks channels in the configured failover order and
acts on the outcome: DONE ends the intent; RETRY tries the same channel again
later, with backoff; FAIL_OVER moves on to the next channel now; DROP ends the
intent on this channel for good (the recipient cannot be reached this way, e.g.
an unregistered device or no WeChat grant), which also moves on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol, runtime_checkable


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"
    FAIL_OVER = "fail_over"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Message:
    """A notification rendered for one channel and one address on it.

    `key` is the intent's idempotency key: it travels to the provider wherever the
    provider keeps a field for it (SMS OutId / SessionContext, FCM data, WeChat page
    query), so a message sent twice after a crash can be recognised as one.
    """

    key: str
    address: str  # device token, WeChat openid, or phone number in E.164 (+86…)
    template: str  # the provider's template id or code (SMS template code, WeChat template id)
    variables: Mapping[str, str]  # template variables, already masked
    title: str = ""  # push only
    body: str = ""  # push, and the in-app inbox
    data: Mapping[str, str] = field(default_factory=dict)  # push data / WeChat page query
    page: str = ""  # WeChat: the mini-program page the message opens ("" for the channel's default)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one attempt, with what the provider said, for the attempt log."""

    outcome: Outcome
    provider: str  # "fcm", "wechat", "aliyun-sms", "tencent-sms"
    detail: str = ""  # the provider's code and message, or the transport error
    provider_id: str | None = None  # the provider's message id, when it gives one
    # The request may have reached the provider and been acted on though no answer came back
    # (a timeout after sending, a dropped connection): sending again could send twice.
    ambiguous: bool = False


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> Delivery:
        """Send once; never raise for a provider's answer or a transport error: classify it."""
        ...


@runtime_checkable
class Reconciling(Protocol):
    """A channel whose provider can say whether it sent a message, found by our key.

    Providers are not idempotent, so after an ambiguous attempt the dispatcher asks
    before sending again: SMS providers keep our key (Aliyun OutId, Tencent
    SessionContext) with each send they record, queryable per phone number.
    """

    name: str

    async def was_sent(self, key: str, address: str, since: datetime) -> bool | None:
        """True: a send carrying `key` to `address` since `since` is on record; False: none is;
        None: the provider could not be asked (then ask again later). Never raises."""
        ...
