"""WeChat mini-program subscription messages (订阅消息) over the official HTTP API.

The access token is fetched once and cached until shortly before it expires; a send
answered 40001/42001 (token invalid or expired) refreshes it and retries once.
Consuming each one-time grant exactly once is the dispatcher's bookkeeping; here
43101 (not subscribed, or the grant is used up) is simply an explicit DROP.

The HTTP client is aiohttp's: one session with a pool as large as the calls the
dispatcher lets run at once. httpx cost 0.7 ms of CPU per send one at a time and about
4 ms with 32 in flight (its pool is walked for every request); aiohttp about 0.2 ms
either way (bench/notify.py, BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import msgspec

from notifications.channels.base import Delivery, Message, Outcome

log = logging.getLogger(__name__)

NAME = "wechat"
KEY_FIELD = "key"  # the page query parameter that carries our idempotency key
NOT_SUBSCRIBED = 43101
_TOKEN_REJECTED = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
_RETRY_CODES = {-1, 45009}  # system busy; daily API quota reached
_FAIL_OVER_CODES = {47003, 40037}  # template data invalid; bad template id
_UNREACHABLE_CODES = {NOT_SUBSCRIBED, 40003}  # not subscribed; openid not valid for this app


@dataclass(frozen=True, slots=True)
class WechatConfig:
    appid: str
    secret: str
    page: str = "pages/index/index"  # the mini-program page a tap opens; the key rides in its query
    base_url: str = "https://api.weixin.qq.com"
    miniprogram_state: str = "formal"  # formal / trial / developer
    timeout_s: float = 10.0
    refresh_margin_s: float = 300.0  # fetch a new token this long before the old one expires
    # Connections kept open to the API: as many as calls the dispatcher lets run at once
    # (CITYPASS_NOTIFY_IN_FLIGHT), so that no call waits for a connection nor opens one per call.
    connections: int = 32


class _ProviderAnswer(Exception):
    """A classified failure that ends the attempt."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.detail)
        self.delivery = delivery


class WechatChannel:
    name = NAME

    def __init__(self, config: WechatConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None  # made in the loop of the first send
        self._proxy = _proxy_for(config.base_url)
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    async def send(self, message: Message) -> Delivery:
        if not message.address:
            return Delivery(Outcome.DROP, NAME, "no openid")
        try:
            token = await self._access_token()
            answer = await self._post(message, token)
            if answer.get("errcode") in _TOKEN_REJECTED:
                log.info("wechat rejected the access token (%s); refreshing once", answer.get("errcode"))
                token = await self._access_token(stale=token)
                answer = await self._post(message, token)
                if answer.get("errcode") in _TOKEN_REJECTED:
                    return Delivery(Outcome.RETRY, NAME, _describe(answer, "after refreshing the token"))
        except _ProviderAnswer as failure:
            return failure.delivery
        return _classify(answer)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            pooled = self._config.connections
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=pooled, limit_per_host=pooled),
                # For connecting, and for each wait for the answer's bytes, as httpx counted it: a
                # deadline on the whole exchange also fired on a busy dispatcher's own lateness,
                # after WeChat had delivered, and the retry was a second message.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._config.timeout_s, sock_read=self._config.timeout_s
                ),
            )
        return self._session

    async def _access_token(self, stale: str | None = None) -> str:
        """The cached token; a fresh one if none, near expiry, or the one just rejected."""
        async with self._token_lock:  # concurrent sends share one fetch
            if self._token is not None and self._token != stale and self._clock() < self._token_expires_at:
                return self._token
            params = {
                "grant_type": "client_credential",
                "appid": self._config.appid,
                "secret": self._config.secret,
            }
            answer = await self._call("GET", "/cgi-bin/token", params)
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                code = answer.get("errcode")
                outcome = Outcome.RETRY if code in _RETRY_CODES or code is None else Outcome.FAIL_OVER
                raise _ProviderAnswer(Delivery(outcome, NAME, _describe(answer, "fetching the access token")))
            lifetime = float(answer.get("expires_in") or 7200)
            self._token = token
            self._token_expires_at = self._clock() + max(lifetime - self._config.refresh_margin_s, 0.0)
            return token

    async def _post(self, message: Message, token: str) -> dict[str, Any]:
        query = urlencode({**message.data, KEY_FIELD: message.key})
        page = message.page or self._config.page
        body = {
            "touser": message.address,
            "template_id": message.template,
            "page": f"{page}{'&' if '?' in page else '?'}{query}",
            "data": {name: {"value": value} for name, value in message.variables.items()},
            "miniprogram_state": self._config.miniprogram_state,
        }
        return await self._call(
            "POST", "/cgi-bin/message/subscribe/send", {"access_token": token}, msgspec.json.encode(body)
        )

    async def _call(
        self, method: str, path: str, params: dict[str, str], body: bytes | None = None
    ) -> dict[str, Any]:
        """One HTTP exchange; transport failures, 5xx and unreadable answers end the attempt as RETRY."""
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            async with self._client().request(
                method,
                self._config.base_url + path,
                params=params,
                data=body,
                headers=headers,
                proxy=self._proxy,
            ) as response:
                status, content = response.status, await response.read()
        except TimeoutError as error:
            raise _ProviderAnswer(Delivery(Outcome.RETRY, NAME, f"timeout: {error!r}")) from error
        except aiohttp.ClientError as error:
            raise _ProviderAnswer(Delivery(Outcome.RETRY, NAME, f"transport: {error!r}")) from error
        if status >= 500:
            raise _ProviderAnswer(Delivery(Outcome.RETRY, NAME, f"HTTP {status}"))
        try:
            answer = msgspec.json.decode(content)
        except msgspec.DecodeError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            text = content[:200].decode(errors="replace")
            raise _ProviderAnswer(Delivery(Outcome.FAIL_OVER, NAME, f"HTTP {status}: {text}"))
        return answer


def _classify(answer: dict[str, Any]) -> Delivery:
    code = answer.get("errcode", 0)
    if code == 0:
        msgid = answer.get("msgid")
        return Delivery(Outcome.DONE, NAME, provider_id=str(msgid) if msgid is not None else None)
    if code in _UNREACHABLE_CODES:
        return Delivery(Outcome.DROP, NAME, _describe(answer))
    if code in _RETRY_CODES:
        return Delivery(Outcome.RETRY, NAME, _describe(answer))
    if code not in _FAIL_OVER_CODES:
        log.warning("wechat answered an errcode we do not know: %s", answer)
    return Delivery(Outcome.FAIL_OVER, NAME, _describe(answer))


def _describe(answer: dict[str, Any], context: str = "") -> str:
    text = f"errcode {answer.get('errcode')}: {answer.get('errmsg', '')}"
    return f"{text} ({context})" if context else text


def _proxy_for(base_url: str) -> str | None:
    """The proxy the environment names for the API (NO_PROXY applied), worked out once: the
    endpoint is fixed, and reading the environment for every send costs as much as the send."""
    parts = urlsplit(base_url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)
