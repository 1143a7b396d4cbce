"""A fake FCM HTTP v1 endpoint: POST /v1/projects/{project}/messages:send, scriptable per device token."""

from __future__ import annotations

import itertools
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tests.fakes.loopback import Answer, JsonHandler, Received

_SEND = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# Scripted answers by name: (HTTP status, canonical status, FCM errorCode).
ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "UNREGISTERED"),
    "INVALID_TOKEN": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "INVALID_PAYLOAD": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    "UNAVAILABLE": (503, "UNAVAILABLE", "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL", "INTERNAL"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
}


@dataclass
class FcmState:
    project: str = "citypass-test"
    # token -> answers to give, in order: a key of ERRORS, "BAD_GATEWAY" (a bare 502), or "SLOW:<seconds>"
    script: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    delivered: list[dict[str, Any]] = field(default_factory=list)  # messages accepted, in order
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail(self, token: str, *answers: str) -> None:
        self.script[token].extend(answers)


class FakeFcm(JsonHandler):
    state: ClassVar[FcmState]

    def answer(self, request: Received) -> Answer:
        match = _SEND.match(request.path)
        if request.method != "POST" or match is None:
            return _error(404, "NOT_FOUND", f"no such method {request.path}")
        if match["project"] != self.state.project:
            return _error(403, "PERMISSION_DENIED", f"unknown project {match['project']}")
        message = (request.json() or {}).get("message") or {}
        token = message.get("fid") or message.get("token")
        if not token:
            return _error(400, "INVALID_ARGUMENT", "Recipient of the message is not set.", "INVALID_ARGUMENT")
        queue = self.state.script.get(token)
        scripted = queue.popleft() if queue else None
        if scripted is not None and scripted.startswith("SLOW:"):
            time.sleep(float(scripted.removeprefix("SLOW:")))
        elif scripted == "BAD_GATEWAY":
            return Answer(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
        elif scripted is not None:
            http, status, code = ERRORS[scripted]
            violations = (
                [{"field": "message.token", "description": "The registration token is not a valid FCM token"}]
                if scripted == "INVALID_TOKEN"
                else [{"field": "message.data", "description": "Invalid data payload"}]
                if scripted == "INVALID_PAYLOAD"
                else None
            )
            return _error(http, status, f"scripted {scripted}", code, violations)
        self.state.delivered.append(message)
        return Answer(200, {"name": f"projects/{self.state.project}/messages/{next(self.state._ids)}"})


def _error(
    http: int,
    status: str,
    text: str,
    fcm_code: str | None = None,
    violations: list[dict[str, str]] | None = None,
) -> Answer:
    details: list[dict[str, Any]] = []
    if fcm_code:
        details.append({"@type": _FCM_ERROR, "errorCode": fcm_code})
    if violations:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations})
    return Answer(http, {"error": {"code": http, "message": text, "status": status, "details": details}})
