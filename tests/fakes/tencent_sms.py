"""A fake Tencent Cloud SMS (2021-01-11) SendSms: a JSON body in, {"Response": ...} out.

Scripted codes that are request-level on the real service (InternalError…,
RequestLimitExceeded…, AuthFailure…) answer {"Response": {"Error": {...}, "RequestId"}}
for the whole call; any other code lands in that number's SendStatusSet entry. The
TC3 signature is not checked. Set `TencentSmsGateway.state = tencent_gateway()` first.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.loopback import Answer, Received
from tests.fakes.sms_script import SERVER_ERROR, SLOW, SmsGateway, SmsGatewayHandler, header

REQUEST_LEVEL = ("InternalError", "RequestLimitExceeded", "AuthFailure", "UnauthorizedOperation")

# The SDK looks for an Error only when the Content-Type is exactly this.
_JSON = {"Content-Type": "application/json"}


def tencent_gateway(failure_rate: float = 0.0, seed: int = 0, slow_seconds: float = 2.0) -> SmsGateway:
    return SmsGateway("Ok", failure_rate, seed, slow_seconds)


class TencentSmsGateway(SmsGatewayHandler):
    def answer(self, request: Received) -> Answer:
        request_id = str(uuid.uuid4())
        if header(request, "x-tc-action") != "SendSms":
            return _error("InvalidAction", request_id)
        sent = request.json()
        key = sent.get("SessionContext", "")
        codes = {phone: self.state.next_code(phone) for phone in sent["PhoneNumberSet"]}
        for phone, code in codes.items():
            self.state.record(phone, sent["TemplateId"], sent.get("TemplateParamSet", []), key, code)
        if SERVER_ERROR in codes.values():
            return Answer(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        refused = [code for code in codes.values() if code.startswith(REQUEST_LEVEL)]
        if refused:
            return _error(refused[0], request_id)
        if SLOW in codes.values():
            self.state.stall()
        statuses = [_status(phone, "Ok" if code == SLOW else code, key) for phone, code in codes.items()]
        return Answer(200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}, _JSON)


def _status(phone: str, code: str, key: str) -> dict[str, Any]:
    ok = code == "Ok"
    return {
        "SerialNo": f"2028:{uuid.uuid4().int % 10**20}" if ok else "",
        "PhoneNumber": phone,
        "Fee": 1 if ok else 0,
        "SessionContext": key,
        "Code": code,
        "Message": "send success" if ok else f"fake {code}",
        "IsoCode": "CN",
    }


def _error(code: str, request_id: str) -> Answer:
    body = {"Response": {"Error": {"Code": code, "Message": f"fake {code}"}, "RequestId": request_id}}
    return Answer(200, body, _JSON)
