"""A fake Tencent Cloud SMS (2021-01-11): SendSms and PullSmsSendStatusByPhoneNumber, a JSON
body in, {"Response": ...} out.

Scripted codes that are request-level on the real service (InternalError…,
RequestLimitExceeded…, AuthFailure…) answer {"Response": {"Error": {...}, "RequestId"}}
for the whole call; any other code lands in that number's SendStatusSet entry. The pull
lists the delivered sends to one E.164 number between BeginTime and EndTime, oldest first,
from Offset; as the real one only knows a send once the carrier reported on it, a send
still pending is not listed. The TC3 signature is not checked. Set
`TencentSmsGateway.state = tencent_gateway()` first.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.loopback import Answer, Received
from tests.fakes.sms_script import (
    REPORT_FAIL,
    REPORT_PENDING,
    SERVER_ERROR,
    SLOW,
    Sent,
    SmsGateway,
    SmsGatewayHandler,
    header,
)

REQUEST_LEVEL = ("InternalError", "RequestLimitExceeded", "AuthFailure", "UnauthorizedOperation")

# The SDK looks for an Error only when the Content-Type is exactly this.
_JSON = {"Content-Type": "application/json"}


def tencent_gateway(failure_rate: float = 0.0, seed: int = 0, slow_seconds: float = 2.0) -> SmsGateway:
    return SmsGateway("Ok", failure_rate, seed, slow_seconds)


class TencentSmsGateway(SmsGatewayHandler):
    def answer(self, request: Received) -> Answer:
        request_id = str(uuid.uuid4())
        match header(request, "x-tc-action"):
            case "SendSms":
                return self._send(request.json(), request_id)
            case "PullSmsSendStatusByPhoneNumber":
                return self._pull(request.json(), request_id)
        return _error("InvalidAction", request_id)

    def _send(self, sent: dict[str, Any], request_id: str) -> Answer:
        key = sent.get("SessionContext", "")
        codes = {phone: self.state.next_code(phone) for phone in sent["PhoneNumberSet"]}
        for phone, code in codes.items():
            self.state.record(phone, sent["TemplateId"], sent.get("TemplateParamSet", []), key, code)
        if SERVER_ERROR in codes.values():
            return _bad_gateway()
        refused = [code for code in codes.values() if code.startswith(REQUEST_LEVEL)]
        if refused:
            return _error(refused[0], request_id)
        if SLOW in codes.values():
            self.state.stall()
        statuses = [_status(phone, "Ok" if code == SLOW else code, key) for phone, code in codes.items()]
        return Answer(200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}, _JSON)

    def _pull(self, asked: dict[str, Any], request_id: str) -> Answer:
        phone: str = asked.get("PhoneNumber", "")
        offset, limit, begin, end = (asked.get(name) for name in ("Offset", "Limit", "BeginTime", "EndTime"))
        if not (
            phone.startswith("+")
            and isinstance(offset, int)
            and isinstance(limit, int)
            and isinstance(begin, int)
            and isinstance(end, int)
            and 1 <= limit <= 100
        ):
            return _error("InvalidParameterValue", request_id)
        code = self.state.next_lookup_code()
        if code == SERVER_ERROR:
            return _bad_gateway()
        if code == SLOW:
            self.state.stall()
        elif code != "Ok":
            return _error(code, request_id)
        sends = [
            sent
            for sent in self.state.delivered_to(lambda sent_to: sent_to == phone)
            if sent.report != REPORT_PENDING and begin <= int(sent.at.timestamp()) <= end
        ]
        reports = [_report(sent) for sent in sends[offset : offset + limit]]
        return Answer(200, {"Response": {"PullSmsSendStatusSet": reports, "RequestId": request_id}}, _JSON)


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


def _report(sent: Sent) -> dict[str, Any]:
    ok = sent.report != REPORT_FAIL
    return {
        "UserReceiveTime": int(sent.at.timestamp()) + 3,
        "CountryCode": "86",
        "SubscriberNumber": sent.phone.removeprefix("+86"),
        "PhoneNumber": sent.phone,
        "SerialNo": f"2028:{id(sent)}",
        "ReportStatus": "SUCCESS" if ok else "FAIL",
        "Description": "用户短信送达成功" if ok else "DELIVRD_FAIL",
        "SessionContext": sent.key,
    }


def _bad_gateway() -> Answer:
    return Answer(502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})


def _error(code: str, request_id: str) -> Answer:
    body = {"Response": {"Error": {"Code": code, "Message": f"fake {code}"}, "RequestId": request_id}}
    return Answer(200, body, _JSON)
