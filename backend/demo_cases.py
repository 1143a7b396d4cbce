"""The demo's people and their cases: one story per case, together covering every state a case can reach.

All personal data here is invented: ID numbers carry valid GB 11643 check digits,
phones are 138 0000 xxxx, and every address is a 演示小区 in a 长沙 district.
A story may move the demo clock to a later working day (`s.clock.day(n)`), never
past now. Not told here: 秒批 and the revocation of a 告知承诺 approval, which
the case service does not offer as commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from backend.cases.access import Caller
from domain.case import (
    Agent,
    Applicant,
    ApplicantKind,
    Enterprise,
    ExtensionKind,
    JsonValue,
    MaterialIssue,
    Person,
    ResultCode,
    ReturnTarget,
    Role,
    SuspensionKind,
    UploadedFile,
)
from domain.case.checks import BEIJING
from domain.personal import (
    Address,
    CreditCode,
    IdNumber,
    PersonName,
    Phone,
    credit_code_check_char,
    id_check_char,
)

if TYPE_CHECKING:
    from backend.demo import DemoCase, Seeder


def parse_applicant(kind: ApplicantKind, name: str, id_number: str, phone: str, address: str) -> Applicant:
    """Every demo applicant is made here, its text parsed by the same domain types the API parses with."""
    if kind is ApplicantKind.ENTERPRISE:
        return Enterprise(
            name=name,
            identity=CreditCode.parse(id_number),
            phone=Phone.parse(phone),
            address=Address.parse(address),
        )
    return Person(
        name=PersonName(name),
        identity=IdNumber.parse(id_number),
        phone=Phone.parse(phone),
        address=Address.parse(address),
    )


def parse_agent(name: str, id_number: str, phone: str) -> Agent:
    """Every demo 经办人 is made here."""
    return Agent(name=PersonName(name), identity=IdNumber.parse(id_number), phone=Phone.parse(phone))


def _resident_id(region: str, born: str, sequence: str) -> str:
    return region + born + sequence + id_check_char(region + born + sequence)


def _credit_code(first17: str) -> str:
    return first17 + credit_code_check_char(first17)


@dataclass(frozen=True, slots=True)
class Citizen:
    subject: str  # the account: dev-login as this subject to see their cases
    name: str
    id_number: str
    phone: str
    address: str

    @property
    def caller(self) -> Caller:
        return Caller(subject=self.subject, role=Role.CITIZEN, name=self.name)

    @property
    def applicant(self) -> Applicant:
        return parse_applicant(ApplicantKind.PERSON, self.name, self.id_number, self.phone, self.address)

    @property
    def agent(self) -> Agent:
        return parse_agent(self.name, self.id_number, self.phone)


# subject, name, (ID region, birth date, sequence), address: phones follow in the list's order.
_CITIZENS = [
    ("zhangsan", "张三", ("430104", "19900315", "031"), "岳麓区麓山南路演示小区1栋101室"),
    ("lisi", "李四", ("430102", "19850721", "053"), "芙蓉区五一大道演示小区2栋202室"),
    ("wangfang", "王芳", ("430111", "19921108", "064"), "雨花区韶山中路演示小区3栋303室"),
    ("zhaolei", "赵磊", ("430105", "19660412", "017"), "开福区湘春路演示小区4栋404室"),
    ("sunli", "孙丽", ("430103", "19580926", "082"), "天心区书院路演示小区5栋505室"),
    ("liuyang", "刘洋", ("430121", "19880603", "045"), "长沙县星沙街道演示小区6栋606室"),
]
CITIZENS = tuple(
    Citizen(f"citizen-{s}", name, _resident_id(*born), f"1380000{1001 + n}", f"湖南省长沙市{address}")
    for n, (s, name, born, address) in enumerate(_CITIZENS)
)
ZHANGSAN, LISI, WANGFANG, ZHAOLEI, SUNLI, LIUYANG = CITIZENS

# Two enterprises; 刘洋 applies for both as their 经办人.
XINGCHEN = parse_applicant(
    ApplicantKind.ENTERPRISE, "长沙麓谷星辰科技有限公司", _credit_code("91430104MA4L7K2Q8"),
    "13800002001", "湖南省长沙市岳麓区麓谷街道演示产业园A栋1201室",
)  # fmt: skip
XIANGJIANG = parse_applicant(
    ApplicantKind.ENTERPRISE, "湖南湘江建设工程有限公司", _credit_code("91430102MA4M3P9R5"),
    "13800002002", "湖南省长沙市芙蓉区芙蓉中路演示大厦18楼",
)  # fmt: skip

HALLS = {"SMZJ": "长沙市政务服务中心（市民之家）", "YLQ": "岳麓区政务服务中心"}
ZHOU = Caller(subject="clerk-zhouqi", role=Role.CLERK, name="周琪", hall="SMZJ")
WU = Caller(subject="clerk-wuxia", role=Role.CLERK, name="吴霞", hall="YLQ")
CLERKS = (ZHOU, WU)

_OFFICER_NAMES = {
    "SCJGJ": "黄敏", "GAJ": "刘强", "SWJ": "何静", "RSJ": "罗勇", "YBJ": "郑丽", "GJJ": "谢涛",
    "ZRGHJ": "邓超", "BDCDJ": "许娟", "WJW": "韩雪", "MZJ": "曹军", "ZJJ": "曾伟", "ZWFW": "冯洁",
}  # fmt: skip
OFFICER = {
    d: Caller(subject=f"officer-{d.lower()}", role=Role.OFFICER, name=n, department=d)
    for d, n in _OFFICER_NAMES.items()
}
# An extension is decided by someone other than who asked: the 民政局's section chief.
MZJ_CHIEF = Caller(subject="officer-mzj-chief", role=Role.OFFICER, name="彭红", department="MZJ")
OFFICERS = (*OFFICER.values(), MZJ_CHIEF)

# Items are named as in the catalogue; Seeder.submit looks their codes up.


async def submitted(s: Seeder) -> None:
    await s.submit("social-card", ZHANGSAN, "社会保障卡申领", story="刚提交，等待预审")


async def pre_review_passed(s: Seeder) -> None:
    c = await s.submit("doctor", WANGFANG, "医师执业注册", story="预审通过，等待窗口受理")
    await c.act(s.service.pass_pre_review, ZHOU, "pre-review")


async def materials_requested(s: Seeder) -> None:
    c = await s.submit(
        "talent", LISI, "人才落户（户口迁入）", missing=["M04"], back=1, story="一次性告知补正两项"
    )
    issues = [
        MaterialIssue(material_id="M02", reason="学位证书扫描件不清晰，请上传彩色原件扫描件"),
        MaterialIssue(material_id="M04", reason="未提交迁出地居民户口簿首页及本人页"),
    ]
    await c.act(s.service.request_materials, ZHOU, "notice", issues=issues)


async def back_after_correction(s: Seeder) -> None:
    c = await s.submit("retirement", ZHAOLEI, "职工正常退休（职）申请", back=2, story="补正后回到预审")
    issues = [MaterialIssue(material_id="M03", reason="人事档案须由存档机构出具并加盖公章")]
    await c.act(s.service.request_materials, ZHOU, "notice", issues=issues)
    s.clock.day(1)
    supplied = {"M03": UploadedFile(s.upload("retirement M03 stamped"))}
    await c.act(s.service.supplement_materials, ZHAOLEI.caller, "supplement", materials=supplied)


async def not_accepted(s: Seeder) -> None:
    c = await s.submit("food", WANGFANG, "食品经营许可", back=1, story="不予受理，并告知出路")
    reason = "经营场所为住宅，不符合食品经营场所的要求"
    path = "另选商业用房作经营场所后重新申请；仅销售预包装食品的，可改为办理备案"
    await c.act(s.service.refuse_acceptance, ZHOU, "refuse", reason=reason, path_forward=path)


async def deemed_accepted(s: Seeder) -> None:
    c = await s.submit("unemployment", LISI, "失业保险金申领", back=8, story="5日内无人预审，依法视为受理")
    await c.let_pre_review_lapse()


async def accepted(s: Seeder) -> None:
    c = await s.submit("retiree-medical", SUNLI, "职工医保退休人员待遇核定", story="已受理，待转办")
    await c.act(s.service.accept, ZHOU, "accept")


async def accepted_with_missing_materials(s: Seeder) -> None:
    c = await s.submit(
        "newborn", WANGFANG, "新生儿出生一件事", missing=["M03"], back=1, story="容缺受理，结婚证待补齐"
    )
    pledge = s.upload("newborn commitment")
    await c.act(
        s.service.accept_with_missing_materials, ZHOU, "accept", missing=["M03"], commitment_sha256=pledge
    )
    await c.act(s.service.route, ZHOU, "route")
    await c.sign(OFFICER["WJW"], 0, then_claim=True)


async def accepted_on_commitment(s: Seeder) -> None:
    c = await s.submit(
        "building-permit", LIUYANG, "建筑工程施工许可证核发", on_behalf_of=XIANGJIANG, missing=["M04"],
        back=1, story="告知承诺受理，承诺书替代审图合格书",
    )  # fmt: skip
    pledge = s.upload("building-permit commitment")
    await c.act(
        s.service.accept_on_commitment, ZHOU, "accept", commitment_sha256=pledge, replaced_proofs=["M04"]
    )
    await c.act(s.service.route, ZHOU, "route")


async def instantly_approved(s: Seeder) -> None:
    c = await s.submit(
        "fund-retired-instant", SUNLI, "住房公积金提取（离休、退休）", back=1, story="材料齐全，秒批通过"
    )
    await c.approve_instantly()


async def revoked_after_check(s: Seeder) -> None:
    c = await s.submit(
        "food-commitment", LIUYANG, "食品经营许可", missing=["M03"], back=8,
        story="告知承诺办结后核查不实，撤销审批决定",
    )  # fmt: skip
    pledge = s.upload("food commitment")
    await c.act(
        s.service.accept_on_commitment, ZHOU, "accept", commitment_sha256=pledge, replaced_proofs=["M03"]
    )
    await c.act(s.service.route, ZHOU, "route")
    await c.sign(OFFICER["SCJGJ"], 3)
    await c.act(s.service.conclude, OFFICER["SCJGJ"], "conclude", result=ResultCode.APPROVED)
    s.clock.day(2)
    reason = "现场核查：实际经营场所与承诺的设备布局不符"
    await c.act(s.service.revoke_commitment_approval, OFFICER["SCJGJ"], "revoke", reason=reason)


async def company_start_up(s: Seeder) -> None:
    form: dict[str, JsonValue] = {
        "企业名称": "长沙麓谷星辰科技有限公司",
        "注册资本（万元）": 100,
        "经营范围": "软件开发",
    }
    c = await s.submit(
        "start-up",
        LIUYANG,
        "企业开办一件事",
        on_behalf_of=XINGCHEN,
        form=form,
        story="五个部门并联，各在不同环节",
    )
    await _accept_and_route(s, c)
    await c.sign(OFFICER["SCJGJ"], 3)  # 设立登记 approved
    await c.sign(OFFICER["GAJ"], 1, then_claim=True)  # 印章刻制 at 审核
    await c.sign(OFFICER["SWJ"], 0, then_claim=True)  # 发票申领 at 承办; RSJ's 社保登记 is still unclaimed
    await c.sign(OFFICER["ZWFW"], 1, then_claim=True)  # 预约开户: 审核 sends it back to 承办
    reason = "预约开户银行与申请表填报的不一致，请重新核对"
    back = ReturnTarget.PREVIOUS_STEP
    await c.act(s.service.return_task, OFFICER["ZWFW"], "return", department="ZWFW", to=back, reason=reason)


async def suspended(s: Seeder) -> None:
    c = await s.submit(
        "works-planning",
        LIUYANG,
        "建设工程规划许可证核发",
        on_behalf_of=XIANGJIANG,
        back=2,
        story="现场勘查，暂停计时",
    )
    await _accept_and_route(s, c)
    await c.sign(OFFICER["ZRGHJ"], 0, then_claim=True)
    until = s.clock().astimezone(BEIJING).date() + timedelta(days=10)
    survey, reason = SuspensionKind.SITE_SURVEY, "需现场核实建筑退让距离"
    await c.act(
        s.service.suspend, OFFICER["ZRGHJ"], "suspend", kind=survey, reason=reason, expected_end=until
    )


async def extension_requested(s: Seeder) -> None:
    c = await s.submit(
        "society", ZHANGSAN, "社会团体成立登记", back=5, story="申请延期10个工作日，待科长审批"
    )
    await _accept_and_route(s, c)
    await c.sign(OFFICER["MZJ"], 1, then_claim=True)
    reason = "需征求业务主管单位意见，法定期限内无法办结"
    standard = ExtensionKind.STANDARD
    await c.act(s.service.request_extension, OFFICER["MZJ"], "extension", kind=standard, reason=reason)


async def delivered_as_e_licence(s: Seeder) -> None:
    c = await s.submit(
        "sole-trader", WANGFANG, "个体工商户设立登记", back=3, story="出证办结，发放电子营业执照"
    )
    await _approved(s, c, OFFICER["SCJGJ"])
    licence = _credit_code("92430111MA4N6R3T1")  # a 个体工商户's licence number is its credit code
    await c.act(s.service.issue_e_licence, OFFICER["SCJGJ"], "e-licence", licence_number=licence)


async def delivered_by_mail(s: Seeder) -> None:
    c = await s.submit("id-card", LISI, "居民身份证换领", back=10, story="岳麓区窗口受理，新证EMS寄递")
    await c.act(s.service.record_trip, WU, "trip", purpose="现场采集人像和指纹")
    await _approved(s, c, OFFICER["GAJ"], clerk=WU)
    await c.act(s.service.mail_result, WU, "mail", waybill_number="1180000012345")


async def delivered_at_window(s: Seeder) -> None:
    c = await s.submit(
        "house", ZHANGSAN, "不动产转移登记（存量房买卖）", back=4, story="出证办结，窗口领取权证"
    )
    await _approved(s, c, OFFICER["BDCDJ"])
    await c.act(s.service.prepare_pickup, ZHOU, "pickup-ready", pickup_code="BDC0417")
    s.clock.day(2)
    await c.act(s.service.record_trip, ZHOU, "trip", purpose="领取不动产权证书")
    await c.act(s.service.record_pickup, ZHOU, "picked-up", pickup_code="BDC0417")


async def awaiting_pickup(s: Seeder) -> None:
    c = await s.submit("property-records", ZHAOLEI, "不动产登记资料查询", story="出证办结，查询结果待领取")
    await _approved(s, c, OFFICER["BDCDJ"])
    await c.act(s.service.prepare_pickup, ZHOU, "pickup-ready", pickup_code="CX1130")


async def denied(s: Seeder) -> None:
    c = await s.submit(
        "fund-housing", ZHAOLEI, "住房公积金提取（购买自住住房）", back=2, story="部门审查未通过，退回办结"
    )
    await _accept_and_route(s, c)
    await c.sign(OFFICER["GJJ"], 0, then_claim=True)
    reason = "购房合同未网签备案，无法核实购房行为"
    await c.act(s.service.reject_task, OFFICER["GJJ"], "reject", department="GJJ", reason=reason)
    await c.act(s.service.conclude, OFFICER["GJJ"], "conclude", result=ResultCode.DENIED, reason=reason)


async def forwarded(s: Seeder) -> None:
    c = await s.submit(
        "land-planning",
        LIUYANG,
        "建设用地规划许可证核发",
        on_behalf_of=XIANGJIANG,
        back=3,
        story="转报省级主管部门",
    )
    await _accept_and_route(s, c)
    await c.sign(OFFICER["ZRGHJ"], 0, then_claim=True)
    reason, up = "项目用地跨县级行政区域，须报省级主管部门审批", "湖南省自然资源厅"
    how = {"result": ResultCode.FORWARDED, "reason": reason, "forwarded_to": up}
    await c.act(s.service.conclude, OFFICER["ZRGHJ"], "conclude", **how)


async def supplement_overdue(s: Seeder) -> None:
    c = await s.submit(
        "fund-retirement",
        SUNLI,
        "住房公积金提取（离休、退休）",
        missing=["M02"],
        back=3,
        story="容缺材料逾期未补",
    )
    pledge = s.upload("fund-retirement commitment")
    await c.act(
        s.service.accept_with_missing_materials, ZHOU, "accept", missing=["M02"], commitment_sha256=pledge
    )
    await c.let_supplement_lapse()


async def withdrawn(s: Seeder) -> None:
    c = await s.submit(
        "resident-medical", ZHANGSAN, "城乡居民基本医疗保险参保登记", back=1, story="申请人撤回"
    )
    await c.act(s.service.withdraw, ZHANGSAN.caller, "withdraw", reason="已随新单位参加职工医保")


async def voided_duplicate(s: Seeder) -> None:
    first = await s.submit("cross-province", LISI, "跨省异地就医备案", story="已受理，待医保局承办")
    await _accept_and_route(s, first)
    again = await s.submit("cross-province-again", LISI, "跨省异地就医备案", story="重复提交，作废")
    reason = "与同一申请人当日提交的跨省异地就医备案重复"
    await again.act(s.service.conclude, ZHOU, "void", result=ResultCode.VOIDED, reason=reason)


async def _accept_and_route(s: Seeder, c: DemoCase, clerk: Caller = ZHOU) -> None:
    await c.act(s.service.accept, clerk, "accept")
    await c.act(s.service.route, clerk, "route")


async def _approved(s: Seeder, c: DemoCase, officer: Caller, *, clerk: Caller = ZHOU) -> None:
    """Accepted, routed, signed through 批准 by one department, and concluded 出证办结."""
    await _accept_and_route(s, c, clerk)
    await c.sign(officer, 3)
    await c.act(s.service.conclude, officer, "conclude", result=ResultCode.APPROVED)


STORIES: tuple[Callable[[Seeder], Awaitable[None]], ...] = (
    submitted, pre_review_passed, materials_requested, back_after_correction, not_accepted, deemed_accepted,
    accepted, accepted_with_missing_materials, accepted_on_commitment, instantly_approved,
    revoked_after_check, company_start_up, suspended, extension_requested, delivered_as_e_licence,
    delivered_by_mail, delivered_at_window, awaiting_pickup, denied, forwarded, supplement_overdue, withdrawn,
    voided_duplicate,
)  # fmt: skip
