"""A fake Alibaba Cloud Dysmsapi: SendSms and QuerySendDetails in the RPC style, parameters
in the query string.

Business answers come as HTTP 200 with {"Code", "Message", "RequestId", ...}; server faults
as HTTP 500 with {"Code", "Message", "RequestId"}. QuerySendDetails lists the delivered sends
to one number on one SendDate (Beijing time), oldest first, a page at a time; like the real
one it wants the number without "+" (11 digits for the mainland). The signature is not
checked. Set `AliyunSmsGateway.state = aliyun_gateway()` before serving.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from domain.case.checks import BEIJING
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

_SEND_STATUS = {REPORT_PENDING: 1, REPORT_FAIL: 2}  # otherwise 3, received


def aliyun_gateway(failure_rate: float = 0.0, seed: int = 0, slow_seconds: float = 2.0) -> SmsGateway:
    return SmsGateway("OK", failure_rate, seed, slow_seconds)


def national(phone: str) -> str:
    """How Dysmsapi keeps a number: a mainland one bare, any other after its country code."""
    digits = phone.removeprefix("+")
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


class AliyunSmsGateway(SmsGatewayHandler):
    def answer(self, request: Received) -> Answer:
        request_id = str(uuid.uuid4()).upper()
        query = {name: values[0] for name, values in request.query.items()}
        match header(request, "x-acs-action"):
            case "SendSms":
                return self._send(query, request_id)
            case "QuerySendDetails":
                return self._details(query, request_id)
        return Answer(400, {"Code": "InvalidAction.NotFound", "Message": "fake", "RequestId": request_id})

    def _send(self, query: dict[str, str], request_id: str) -> Answer:
        phone = query.get("PhoneNumbers", "")
        code = self.state.next_code(phone)
        self.state.record(
            phone,
            query.get("TemplateCode", ""),
            json.loads(query.get("TemplateParam") or "{}"),
            query.get("OutId", ""),
            code,
        )
        if code == SERVER_ERROR:
            return _outage(request_id)
        if code == SLOW:
            self.state.stall()
            code = "OK"
        body = {"Code": code, "Message": "OK" if code == "OK" else f"fake {code}", "RequestId": request_id}
        if code == "OK":
            body["BizId"] = f"{uuid.uuid4().int % 10**18}^0"
        return Answer(200, body)

    def _details(self, query: dict[str, str], request_id: str) -> Answer:
        phone, day = query.get("PhoneNumber", ""), query.get("SendDate", "")
        size, page = int(query.get("PageSize") or 0), int(query.get("CurrentPage") or 0)
        if not (phone.isdigit() and len(day) == 8 and 1 <= size <= 50 and page >= 1):
            refusal = {"Code": "isv.INVALID_PARAMETERS", "Message": "fake: bad parameters"}
            return Answer(200, {**refusal, "RequestId": request_id})
        code = self.state.next_lookup_code()
        if code == SERVER_ERROR:
            return _outage(request_id)
        if code == SLOW:
            self.state.stall()
        elif code != "OK":
            return Answer(200, {"Code": code, "Message": f"fake {code}", "RequestId": request_id})
        sends = [
            sent
            for sent in self.state.delivered_to(lambda sent_to: national(sent_to) == phone)
            if sent.at.astimezone(BEIJING).strftime("%Y%m%d") == day
        ]
        shown = sends[(page - 1) * size : page * size]
        return Answer(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": request_id,
                "TotalCount": str(len(sends)),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": [_detail(sent) for sent in shown]},
            },
        )


def _detail(sent: Sent) -> dict[str, Any]:
    status = _SEND_STATUS.get(sent.report, 3)
    at = sent.at.astimezone(BEIJING)
    return {
        "PhoneNum": national(sent.phone),
        "SendStatus": status,
        "ErrCode": {1: "", 2: "MK:0001"}.get(status, "DELIVERED"),
        "TemplateCode": sent.template,
        "Content": f"fake content of {sent.template}",
        "SendDate": at.strftime("%Y-%m-%d %H:%M:%S"),
        "ReceiveDate": "" if status == 1 else (at + timedelta(seconds=3)).strftime("%Y-%m-%d %H:%M:%S"),
        "OutId": sent.key,
    }


def _outage(request_id: str) -> Answer:
    return Answer(500, {"Code": "InternalError", "Message": "fake outage", "RequestId": request_id})
