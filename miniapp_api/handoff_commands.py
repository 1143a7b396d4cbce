"""The clerks' 跨城通办 routes: 转办理地, and the paper originals posted for the handling city's archive."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.case_port import CaseCommandService, caller_of
from miniapp_api.case_schemas import CaseOut, RequestKey
from miniapp_api.principal import Role
from miniapp_api.schemas import ApiStruct


class HandoffIn(ApiStruct):
    partner: Annotated[str, Meta(pattern=r"^[0-9]{6}$")]  # the handling city's region, e.g. 430200
    mode: Literal["remote_collect", "full_online", "multi_city"]  # 异地代收代办, 全程网办, 多地联办


class PaperPostedIn(ApiStruct):
    waybill_number: Annotated[str, Meta(min_length=1, max_length=64)]
    carrier: Annotated[str, Meta(min_length=1, max_length=64)] = "EMS"


class HandoffOut(CaseOut):
    handoff: UUID  # the same id on both sides; the partner's reports name it
    partner: str


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
        done = await service.hand_off(
            caller_of(principal), case, partner=data.partner, mode=data.mode, request_id=key
        )
        return HandoffOut(
            case_id=done.case_id,
            number=done.number,
            status=str(done.status),
            version=done.version,
            handoff=done.handoff,
            partner=done.partner,
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
