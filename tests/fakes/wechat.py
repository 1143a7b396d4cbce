"""A fake WeChat API: access tokens (/cgi-bin/token) and subscription messages, scriptable per openid."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tests.fakes.loopback import Answer, JsonHandler, Received

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40037: "invalid template_id",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    47001: "data format error",
    47003: "argument invalid! data.thing1.value invalid",
}


@dataclass
class WechatState:
    appid: str = "wx-test-app"
    secret: str = "s3cret"
    expires_in: int = 7200
    valid: set[str] = field(default_factory=set)  # tokens the fake currently accepts
    expired: set[str] = field(default_factory=set)  # tokens it answers 42001 for
    # openid -> answers to give, in order: an errcode, "HTTP500", or "SLOW:<seconds>"
    script: dict[str, deque[int | str]] = field(default_factory=lambda: defaultdict(deque))
    token_script: deque[int | str] = field(default_factory=deque)  # the same, for token fetches
    delivered: list[dict[str, Any]] = field(default_factory=list)  # messages accepted, in order
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _token_ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail(self, openid: str, *answers: int | str) -> None:
        self.script[openid].extend(answers)

    def expire_tokens(self) -> None:
        self.expired |= self.valid
        self.valid.clear()

    def invalidate_tokens(self) -> None:
        self.valid.clear()


class FakeWechat(JsonHandler):
    state: ClassVar[WechatState]

    def answer(self, request: Received) -> Answer:
        if request.path == "/cgi-bin/token" and request.method == "GET":
            return self._token(request)
        if request.path == "/cgi-bin/message/subscribe/send" and request.method == "POST":
            return self._send(request)
        return Answer(404, b"not found", {"Content-Type": "text/plain"})

    def _token(self, request: Received) -> Answer:
        scripted = _scripted(self.state.token_script)
        if scripted is not None:
            return scripted
        query = {name: values[0] for name, values in request.query.items()}
        if query.get("grant_type") != "client_credential" or query.get("appid") != self.state.appid:
            return _errcode(40013, "invalid appid")
        if query.get("secret") != self.state.secret:
            return _errcode(40001, "invalid credential, secret is wrong")
        token = f"token-{next(self.state._token_ids)}"
        self.state.valid.add(token)
        return Answer(200, {"access_token": token, "expires_in": self.state.expires_in})

    def _send(self, request: Received) -> Answer:
        token = (request.query.get("access_token") or [""])[0]
        if token in self.state.expired:
            return _errcode(42001)
        if token not in self.state.valid:
            return _errcode(40001)
        message = request.json() or {}
        if not message.get("touser") or not message.get("template_id"):
            return _errcode(47001)  # a body cut short (a sender killed mid-request) is no message
        scripted = _scripted(self.state.script.get(message.get("touser", "")))
        if scripted is not None:
            return scripted
        self.state.delivered.append(message)
        return Answer(200, {"errcode": 0, "errmsg": "ok", "msgid": 3_000_000_000 + next(self.state._ids)})


def _scripted(queue: deque[int | str] | None) -> Answer | None:
    """The next scripted failure, or None to answer normally (after any scripted delay)."""
    answer = queue.popleft() if queue else None
    if isinstance(answer, int):
        return _errcode(answer)
    if answer == "HTTP500":
        return Answer(500, b"<html>500 Internal Server Error</html>", {"Content-Type": "text/html"})
    if isinstance(answer, str) and answer.startswith("SLOW:"):
        time.sleep(float(answer.removeprefix("SLOW:")))
    return None


def _errcode(code: int, errmsg: str | None = None) -> Answer:
    return Answer(200, {"errcode": code, "errmsg": errmsg or ERRMSG.get(code, "error")})
