"""The FCM channel through the real firebase-admin SDK against a fake FCM on a loopback port."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator

import firebase_admin
import pytest
from firebase_admin import messaging
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.exceptions import RefreshError

from notifications.channels.base import Channel, Delivery, Message, Outcome
from notifications.channels.fcm import FCM_PATH, KEY_FIELD, FcmChannel, FcmConfig, is_dead_token
from tests.fakes.fcm import FakeFcm, FcmState
from tests.fakes.loopback import Answer, Received, Served, serving

pytestmark = pytest.mark.integration  # no database: real HTTP to a fake provider


def anonymous() -> Credentials:
    return AnonymousCredentials()  # type: ignore[no-untyped-call]  # google-auth leaves it untyped


@pytest.fixture
def fcm() -> Iterator[tuple[Served, FcmState]]:
    FakeFcm.state = FcmState(project=f"citypass-{uuid.uuid4().hex[:8]}")
    with serving(FakeFcm) as served:
        yield served, FakeFcm.state


@pytest.fixture
async def channel(fcm: tuple[Served, FcmState]) -> AsyncIterator[FcmChannel]:
    served, state = fcm
    config = FcmConfig(state.project, anonymous(), endpoint=served.url, timeout_s=0.5)
    channel = FcmChannel(config)
    yield channel
    await channel.aclose()


def push(token: str, key: str | None = None) -> Message:
    return Message(
        key=key or uuid.uuid4().hex,
        address=token,
        template="case-accepted",
        variables={},
        title="受理通知",
        body="您的申请已受理",
        data={"case": "C-1"},
    )


async def send_once(config: FcmConfig) -> Delivery:
    """One push to device-a through a channel of its own, closed afterwards."""
    channel = FcmChannel(config)
    try:
        return await channel.send(push("device-a"))
    finally:
        await channel.aclose()


def test_the_sdk_still_reads_fcm_url_from_the_service_class() -> None:
    # The endpoint override depends on this private attribute of firebase-admin 7.7.
    assert "FCM_URL" in vars(messaging._MessagingService)
    assert messaging._MessagingService.FCM_URL.endswith(FCM_PATH)


async def test_sdk_honours_fcm_url_set_before_first_use(
    fcm: tuple[Served, FcmState], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, state = fcm
    monkeypatch.setattr(messaging._MessagingService, "FCM_URL", served.url + FCM_PATH)  # raises if gone
    channel = FcmChannel(FcmConfig(state.project, anonymous()))  # no endpoint of its own
    try:
        delivery = await channel.send(push("device-a"))
    finally:
        await channel.aclose()
    assert delivery.outcome is Outcome.DONE
    assert len(served.received) == 1


@pytest.mark.filterwarnings("error::DeprecationWarning")  # Message.token would warn
async def test_success_carries_the_key_and_returns_the_message_name(
    channel: FcmChannel, fcm: tuple[Served, FcmState]
) -> None:
    served, state = fcm
    sender: Channel = channel
    delivery = await sender.send(push("device-a", key="intent-42"))
    assert delivery.outcome is Outcome.DONE
    assert delivery.provider == "fcm"
    assert delivery.provider_id == f"projects/{state.project}/messages/1"
    [request] = served.received
    assert request.path == f"/v1/projects/{state.project}/messages:send"
    sent = request.json()["message"]
    assert sent["fid"] == "device-a"  # 7.7's replacement for the deprecated token field
    assert sent["data"] == {"case": "C-1", KEY_FIELD: "intent-42"}
    assert sent["notification"] == {"title": "受理通知", "body": "您的申请已受理"}


async def test_the_channel_endpoint_does_not_leak_to_other_apps(channel: FcmChannel) -> None:
    assert messaging._MessagingService.FCM_URL.startswith("https://fcm.googleapis.com/")
    other = firebase_admin.initialize_app(
        anonymous(), {"projectId": "other"}, name=f"other-{uuid.uuid4().hex}"
    )
    try:
        assert messaging._get_messaging_service(other)._fcm_url.startswith("https://fcm.googleapis.com/")
    finally:
        await asyncio.to_thread(firebase_admin.delete_app, other)  # it runs a loop of its own


@pytest.mark.parametrize(
    ("scripted", "outcome"),
    [
        ("UNREGISTERED", Outcome.DROP),
        ("INVALID_TOKEN", Outcome.DROP),
        ("INVALID_PAYLOAD", Outcome.FAIL_OVER),
        ("UNAVAILABLE", Outcome.RETRY),
        ("INTERNAL", Outcome.RETRY),
        ("BAD_GATEWAY", Outcome.RETRY),
        ("QUOTA_EXCEEDED", Outcome.RETRY),
        ("SENDER_ID_MISMATCH", Outcome.FAIL_OVER),
    ],
)
async def test_provider_errors_are_classified(
    channel: FcmChannel, fcm: tuple[Served, FcmState], scripted: str, outcome: Outcome
) -> None:
    served, state = fcm
    state.fail("device-a", scripted)
    delivery = await channel.send(push("device-a"))
    assert delivery.outcome is outcome, delivery.detail
    assert is_dead_token(delivery) is (outcome is Outcome.DROP)
    assert len(served.received) == 1  # the SDK did not retry behind the dispatcher's back
    again = await channel.send(push("device-a"))
    assert again.outcome is Outcome.DONE  # the script is spent: the fake delivers


class RefreshableToken(Credentials):
    """Credentials that refresh as a service account's do, without Google: each refresh a new token."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # google-auth leaves it untyped
        self.refreshes = 0

    def refresh(self, request: object) -> None:
        self.refreshes += 1
        self.token = f"token-{self.refreshes}"


async def test_a_third_party_auth_error_falls_over_after_the_sdk_has_refreshed_its_token(
    fcm: tuple[Served, FcmState],
) -> None:
    # APNs or web push refused the sender's credentials: FCM answers 401. The SDK takes any 401
    # for its own token gone stale, refreshes it and sends again, twice; the answer stays no,
    # so nothing reaches a device, and the notification goes on to the next channel.
    served, state = fcm
    credential = RefreshableToken()
    state.fail("device-a", "THIRD_PARTY_AUTH_ERROR", "THIRD_PARTY_AUTH_ERROR", "THIRD_PARTY_AUTH_ERROR")
    delivery = await send_once(FcmConfig(state.project, credential, endpoint=served.url, timeout_s=0.5))
    assert delivery.outcome is Outcome.FAIL_OVER, delivery.detail
    assert delivery.detail.startswith("THIRD_PARTY_AUTH_ERROR 401")
    assert len(served.received) == 3 and credential.refreshes == 3  # the first token, then two refreshes
    tokens = [next(v for k, v in r.headers.items() if k.lower() == "authorization") for r in served.received]
    assert tokens == ["Bearer token-1", "Bearer token-2", "Bearer token-3"]
    assert state.delivered == []


class RevokedKey(Credentials):
    """Credentials whose every refresh is refused, as a revoked service-account key's are."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # google-auth leaves it untyped

    def refresh(self, request: object) -> None:
        raise RefreshError("invalid_grant: Invalid JWT Signature.")  # type: ignore[no-untyped-call]


async def test_refused_credentials_fall_over_to_the_next_channel_without_a_request(
    fcm: tuple[Served, FcmState],
) -> None:
    served, state = fcm
    delivery = await send_once(FcmConfig(state.project, RevokedKey(), endpoint=served.url, timeout_s=0.5))
    assert delivery.outcome is Outcome.FAIL_OVER
    assert delivery.detail.startswith("credentials: invalid_grant")
    assert not is_dead_token(delivery)  # the device is fine; our key is not
    assert served.received == []


async def test_unregistered_names_the_code_and_spares_other_tokens(
    channel: FcmChannel, fcm: tuple[Served, FcmState]
) -> None:
    _, state = fcm
    state.fail("dead-device", "UNREGISTERED")
    dead = await channel.send(push("dead-device"))
    alive = await channel.send(push("live-device"))
    assert dead.outcome is Outcome.DROP and dead.detail.startswith("UNREGISTERED 404")
    assert alive.outcome is Outcome.DONE and not is_dead_token(alive)
    assert [m["fid"] for m in state.delivered] == ["live-device"]


async def test_a_timeout_is_retried_later_and_sent_once(
    channel: FcmChannel, fcm: tuple[Served, FcmState]
) -> None:
    served, state = fcm
    state.fail("device-a", "SLOW:1.5")  # longer than the channel's 0.5 s timeout
    delivery = await channel.send(push("device-a"))
    assert delivery.outcome is Outcome.RETRY
    assert delivery.detail.startswith("DEADLINE_EXCEEDED")
    assert len(served.received) == 1


async def test_an_unreachable_endpoint_is_retried_later() -> None:
    with serving(FakeFcm) as served:
        url = served.url  # the port is free again once the fake stops
    delivery = await send_once(FcmConfig("citypass-gone", anonymous(), endpoint=url))
    assert delivery.outcome is Outcome.RETRY
    assert delivery.detail.startswith("UNAVAILABLE")


async def test_no_address_is_dropped_without_a_request(
    channel: FcmChannel, fcm: tuple[Served, FcmState]
) -> None:
    served, _ = fcm
    delivery = await channel.send(push(""))
    assert delivery.outcome is Outcome.DROP
    assert served.received == []


async def test_proxies_are_taken_from_the_environment_when_the_channel_is_built(
    fcm: tuple[Served, FcmState], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, state = fcm
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with serving(FakeFcm) as gone:
        dead_proxy = gone.url  # nothing listens there once this fake stops
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    proxied = FcmChannel(FcmConfig(state.project, anonymous(), endpoint=served.url, timeout_s=0.5))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = FcmChannel(FcmConfig(state.project, anonymous(), endpoint=served.url, timeout_s=0.5))
    # What the environment says later does not change a channel already built.
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("NO_PROXY")
    try:
        through_proxy = await proxied.send(push("device-a"))
        straight = await direct.send(push("device-b"))
    finally:
        await proxied.aclose()
        await direct.aclose()
    assert through_proxy.outcome is Outcome.RETRY  # it went for the proxy, which is not there
    assert straight.outcome is Outcome.DONE  # NO_PROXY held when it was built
    assert [r.json()["message"]["fid"] for r in served.received] == ["device-b"]


class _Gauge:
    """How many sends the fake is answering at once, and the most it ever was."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0


class CountingFcm(FakeFcm):
    gauge = _Gauge()

    def answer(self, request: Received) -> Answer:
        gauge = self.gauge
        with gauge.lock:
            gauge.now += 1
            gauge.peak = max(gauge.peak, gauge.now)
        try:
            return super().answer(request)
        finally:
            with gauge.lock:
                gauge.now -= 1


async def test_as_many_pushes_are_under_way_at_once_as_the_channel_has_connections() -> None:
    # asyncio's shared thread pool holds at most 32 threads (the cores plus four, here six):
    # a channel allowed 40 sends at once must not queue them there behind each other.
    CountingFcm.state = state = FcmState(project=f"citypass-{uuid.uuid4().hex[:8]}")
    CountingFcm.gauge = _Gauge()
    devices = [f"device-{n}" for n in range(40)]
    for device in devices:
        state.fail(device, "SLOW:0.5")  # answered after half a second, then delivered
    with serving(CountingFcm) as served:
        channel = FcmChannel(FcmConfig(state.project, anonymous(), endpoint=served.url, connections=40))
        try:
            deliveries = await asyncio.gather(*(channel.send(push(device)) for device in devices))
        finally:
            await channel.aclose()
    assert [d.outcome for d in deliveries] == [Outcome.DONE] * 40
    assert CountingFcm.gauge.peak == 40
