"""A fake Alibaba Cloud Dysmsapi: SendSms in the RPC style, parameters in the query string.

Business answers come as HTTP 200 with {"Code", "Message", "BizId", "RequestId"};
server faults as HTTP 500 with {"Code", "Message", "RequestId"}. The signature is not
checked. Set `AliyunSmsGateway.state = aliyun_gateway()` before serving.
"""

from __future__ import annotations

import json
import uuid

from tests.fakes.loopback import Answer, Received
from tests.fakes.sms_script import SERVER_ERROR, SLOW, SmsGateway, SmsGatewayHandler, header


def aliyun_gateway(failure_rate: float = 0.0, seed: int = 0, slow_seconds: float = 2.0) -> SmsGateway:
    return SmsGateway("OK", failure_rate, seed, slow_seconds)


class AliyunSmsGateway(SmsGatewayHandler):
    def answer(self, request: Received) -> Answer:
        request_id = str(uuid.uuid4()).upper()
        if header(request, "x-acs-action") != "SendSms":
            return Answer(400, {"Code": "InvalidAction.NotFound", "Message": "fake", "RequestId": request_id})
        query = {name: values[0] for name, values in request.query.items()}
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
            return Answer(500, {"Code": "InternalError", "Message": "fake outage", "RequestId": request_id})
        if code == SLOW:
            self.state.stall()
            code = "OK"
        body = {"Code": code, "Message": "OK" if code == "OK" else f"fake {code}", "RequestId": request_id}
        if code == "OK":
            body["BizId"] = f"{uuid.uuid4().int % 10**18}^0"
        return Answer(200, body)
