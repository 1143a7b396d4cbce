"""FCM push through the firebase-admin SDK, one named Firebase app per channel.

The SDK is synchronous here (its `send`), so each send runs in a worker thread: the
channel's own pool, as many threads as calls the dispatcher lets run at once. (asyncio's
shared default pool has only the machine's cores plus four, so pushes would queue there.)
A DROP from this channel always means the device address is dead (unregistered
or not a valid token): `is_dead_token` tells the caller to remove it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import firebase_admin
from firebase_admin import exceptions, messaging
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

from notifications.channels.base import Delivery, Message, Outcome

log = logging.getLogger(__name__)

NAME = "fcm"
KEY_FIELD = "key"  # the data field that carries our idempotency key to the device
FCM_PATH = "/v1/projects/{0}/messages:send"  # FCM HTTP v1; {0} is the project id

_RETRY_CODES = {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED", "CANCELLED"}
_RETRY_FCM_CODES = {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}
_FAIL_OVER_FCM_CODES = {"SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR"}
_TOKEN_FIELDS = {"message.token", "message.fid"}
_endpoint_lock = threading.Lock()  # FCM_URL is a class attribute: swap it for one service build at a time


@dataclass(frozen=True, slots=True)
class FcmConfig:
    project_id: str
    credential: Credentials | None = None  # None: Google application default credentials
    endpoint: str | None = None  # e.g. http://127.0.0.1:8080; None: the SDK's own FCM_URL
    timeout_s: float = 10.0
    app_name: str | None = None  # None: a unique name per channel instance
    # Sends under way at once, each in a thread holding a kept-alive connection: as many as calls
    # the dispatcher lets run at once (CITYPASS_NOTIFY_IN_FLIGHT).
    connections: int = 32


def is_dead_token(delivery: Delivery) -> bool:
    """True when the device address the message went to should be removed."""
    return delivery.provider == NAME and delivery.outcome is Outcome.DROP


class FcmChannel:
    name = NAME

    def __init__(self, config: FcmConfig) -> None:
        self._app = firebase_admin.initialize_app(
            config.credential,  # the SDK wraps a google.auth credential itself
            {"projectId": config.project_id, "httpTimeout": config.timeout_s},
            name=config.app_name or f"citypass-fcm-{uuid.uuid4().hex}",
        )
        self._threads = ThreadPoolExecutor(config.connections, thread_name_prefix="fcm-send")
        self._build_service(config.endpoint.rstrip("/") + FCM_PATH if config.endpoint else None, config)

    def _build_service(self, url_template: str | None, config: FcmConfig) -> None:
        """Build this app's messaging service now, at our endpoint if given, with our retry policy.

        FCM_URL is read once, when an app's service is built, so swapping it for that moment
        points this app alone at the endpoint. The SDK would also resend a POST after a read
        error and retry 500/503 four times with sleeps in the worker thread; the dispatcher
        owns retries (with backoff and jitter), so only a refused connection is retried here.
        """
        service_class = messaging._MessagingService
        if "FCM_URL" not in vars(service_class):
            raise RuntimeError("firebase-admin no longer reads _MessagingService.FCM_URL; cannot override")
        with _endpoint_lock:
            original = service_class.FCM_URL
            service_class.FCM_URL = url_template or original
            try:
                service = messaging._get_messaging_service(self._app)  # the SDK caches it on the app
            finally:
                service_class.FCM_URL = original
        adapter = HTTPAdapter(
            pool_maxsize=config.connections,  # requests keeps 10, and would drop the rest after each send
            max_retries=Retry(total=None, connect=1, read=0, status=0, other=0),
        )
        session = service._client.session
        for prefix in ("http://", "https://", "https://fcm.googleapis.com"):
            session.mount(prefix, adapter)
        # requests reads the proxy variables and ~/.netrc again for every send (trust_env); the
        # endpoint is fixed, so its proxies (NO_PROXY applied) are worked out once, here.
        endpoint = (url_template or service_class.FCM_URL).format(self._app.project_id)
        session.proxies.update(get_environ_proxies(endpoint))
        session.trust_env = False

    async def send(self, message: Message) -> Delivery:
        if not message.address:
            return Delivery(Outcome.DROP, NAME, "no device token")
        notification = (
            messaging.Notification(title=message.title or None, body=message.body or None)
            if message.title or message.body
            else None
        )
        # `fid` is 7.7's replacement for the deprecated `token`: the device's installation id.
        push = messaging.Message(
            fid=message.address, data={**message.data, KEY_FIELD: message.key}, notification=notification
        )
        try:
            send = functools.partial(messaging.send, push, app=self._app)
            name = await asyncio.get_running_loop().run_in_executor(self._threads, send)
        except exceptions.FirebaseError as error:
            return _classify(error)
        except auth_exceptions.RefreshError as error:
            # Our own credentials are refused (a revoked key, a wrong account): no push goes out
            # until someone mends them, so the next channel takes the notification meanwhile.
            log.warning("fcm credentials could not be refreshed: %s", error)
            return Delivery(Outcome.FAIL_OVER, NAME, f"credentials: {error}")
        except auth_exceptions.TransportError as error:  # the token endpoint was out of reach
            return Delivery(Outcome.RETRY, NAME, f"credentials unreachable: {error}")
        except ValueError as error:  # the SDK refused to encode the message: ours to fix, not FCM's
            log.warning("fcm message rejected before sending: %s", error)
            return Delivery(Outcome.FAIL_OVER, NAME, f"invalid message: {error}")
        return Delivery(Outcome.DONE, NAME, provider_id=name)

    async def aclose(self) -> None:
        # delete_app closes the SDK's async client with asyncio.run, so it must leave this loop.
        await asyncio.to_thread(firebase_admin.delete_app, self._app)
        self._threads.shutdown(wait=False)


def _classify(error: exceptions.FirebaseError) -> Delivery:
    body = _error_body(error)
    fcm_code = next(
        (d.get("errorCode") for d in body.get("details", []) if str(d.get("@type", "")).endswith("FcmError")),
        None,
    )
    status = error.http_response.status_code if error.http_response is not None else None
    code = fcm_code or error.code
    detail = f"{code}{f' {status}' if status else ''}: {error}"
    if isinstance(error, messaging.UnregisteredError) or code in {"UNREGISTERED", "NOT_FOUND"}:
        return Delivery(Outcome.DROP, NAME, detail)
    if code == "INVALID_ARGUMENT":
        # FCM says INVALID_ARGUMENT for a malformed token and for a malformed payload; only the first is dead.
        fields = {v.get("field") for d in body.get("details", []) for v in d.get("fieldViolations", [])}
        return Delivery(Outcome.DROP if fields & _TOKEN_FIELDS else Outcome.FAIL_OVER, NAME, detail)
    if code in _FAIL_OVER_FCM_CODES:
        return Delivery(Outcome.FAIL_OVER, NAME, detail)
    if code in _RETRY_FCM_CODES or error.code in _RETRY_CODES or (status is not None and status >= 500):
        return Delivery(Outcome.RETRY, NAME, detail)
    if isinstance(error, exceptions.ResourceExhaustedError):
        return Delivery(Outcome.RETRY, NAME, detail)
    return Delivery(Outcome.FAIL_OVER, NAME, detail)


def _error_body(error: exceptions.FirebaseError) -> dict[str, Any]:
    """The `error` object of FCM's answer, or {} when there was no JSON answer."""
    if error.http_response is None:
        return {}
    try:
        parsed = error.http_response.json()
    except ValueError:
        return {}
    inner = parsed.get("error") if isinstance(parsed, dict) else None
    return inner if isinstance(inner, dict) else {}
