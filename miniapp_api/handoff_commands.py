"""The clerks' 跨城通办 routes: 转办理地, and the paper originals posted for the handling city's archive."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import post
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.case_port import CaseCommandService, caller_of
from miniapp_api.case_schemas import CaseOut, RequestKey
from miniapp_api.principal import Role
from miniapp_api.schemas import ApiStruct

Region = Annotated[str, Meta(pattern=r"^[0-9]{6}$")]


class HandoffIn(ApiStruct):
    mode: Literal["remote_collect", "full_online", "multi_city"]  # 异地代收代办, 全程网办, 多地联办
    partner: Region | None = None  # the handling city's region, e.g. 430200
    partners: Annotated[list[Region], Meta(min_length=1, max_length=16)] | None = None  # 多地联办: each city


class PartOut(ApiStruct):
    partner: str
    handoff: UUID


class PaperPostedIn(ApiStruct):
    waybill_number: Annotated[str, Meta(min_length=1, max_length=64)]
    carrier: Annotated[str, Meta(min_length=1, max_length=64)] = "EMS"


class HandoffOut(CaseOut):
    handoff: UUID  # the same id on both sides; the partner's reports name it (多地联办: the first part's)
    partner: str
    parts: list[PartOut]  # every city handed off by this request, with its handoff id


def handoff_command_handlers(service: CaseCommandService) -> list[HTTPRouteHandler]:
    """Relative to /api/v1."""

    @post(
        "/staff/cases/{case:uuid}/handoff",
        guards=[require_roles(Role.CLERK)],
        status_code=200,
        tags=["case commands"],
        summary="转办理地: hand the case to a partner city (跨城通办)",
    )
    async def handoff(
        case: FromPath[UUID], data: JSONBody[HandoffIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> HandoffOut:
        who = caller_of(principal)
        if data.partners is not None:
            if data.mode != "multi_city" or data.partner is not None:
                raise ValidationException(
                    "partners (several cities) is for mode multi_city, instead of partner",
                    extra=[{"key": "partners", "message": "only with mode multi_city", "source": "body"}],
                )
            done = await service.hand_off_jointly(who, case, partners=data.partners, request_id=key)
        elif data.partner is None:
            raise ValidationException(
                "partner is required", extra=[{"key": "partner", "message": "required", "source": "body"}]
            )
        else:
            done = await service.hand_off(who, case, partner=data.partner, mode=data.mode, request_id=key)
        return HandoffOut(
            case_id=done.case_id,
            number=done.number,
            status=str(done.status),
            version=done.version,
            handoff=done.handoff,
            partner=done.partner,
            parts=[PartOut(partner=p, handoff=h) for p, h in done.parts],
        )

    @post(
        "/staff/cases/{case:uuid}/paper-materials",
        guards=[require_roles(Role.CLERK)],
        status_code=200,
        tags=["case commands"],
        summary="收件地: the paper originals posted to the handling city's archive (跨城通办)",
    )
    async def paper_posted(
        case: FromPath[UUID],
        data: JSONBody[PaperPostedIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        done = await service.post_paper_materials(
            caller_of(principal),
            case,
            waybill_number=data.waybill_number,
            carrier=data.carrier,
            request_id=key,
        )
        return CaseOut(
            case_id=done.case_id, number=done.number, status=str(done.status), version=done.version
        )

    @post(
        "/staff/cases/{case:uuid}/paper-archived",
        guards=[require_roles(Role.CLERK)],
        status_code=200,
        tags=["case commands"],
        summary="办理地: the paper originals arrived and are archived (跨城通办)",
    )
    async def paper_archived(
        case: FromPath[UUID], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        done = await service.archive_paper_materials(caller_of(principal), case, request_id=key)
        return CaseOut(
            case_id=done.case_id, number=done.number, status=str(done.status), version=done.version
        )

    return [handoff, paper_posted, paper_archived]
