"""Material uploads (multipart, as wx.uploadFile sends them) and reads for staff."""

from __future__ import annotations

from typing import Annotated, Protocol

from litestar import Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from miniapp_api.auth import require_roles
from miniapp_api.principal import Role
from miniapp_api.schemas import ApiStruct


class StoredMaterial(ApiStruct):
    sha256: str
    size: int
    media_type: str


class MaterialInfo(Protocol):
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def media_type(self) -> str: ...


class MaterialFiles(Protocol):
    """The file store as the API sees it; errors are mapped to problems by the app's ProblemMap."""

    def put(self, data: bytes, declared_type: str | None = None) -> MaterialInfo: ...

    def read(self, sha256: str) -> tuple[bytes, MaterialInfo]: ...


def materials_router(files: MaterialFiles, *, max_upload_bytes: int) -> Router:
    @post(
        "/",
        summary="Upload one material; the same content always gets the same sha256",
        # Multipart framing around the file needs a little room above the file limit.
        request_max_body_size=max_upload_bytes + 65_536,
    )
    async def upload(
        data: Annotated[UploadFile, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> StoredMaterial:
        ref = files.put(await data.read(), data.content_type)
        return StoredMaterial(sha256=ref.sha256, size=ref.size, media_type=ref.media_type)

    @get(
        "/{sha256:str}",
        summary="Read a material (staff and auditors); its hash is checked on every read",
        guards=[require_roles(Role.CLERK, Role.OFFICER, Role.AUDITOR)],
    )
    async def read(sha256: str) -> Response[bytes]:
        content, ref = files.read(sha256)
        return Response(
            content,
            media_type=ref.media_type,
            headers={"Cache-Control": "private, no-store", "ETag": f'"{ref.sha256}"'},
        )

    return Router(path="/api/v1/materials", route_handlers=[upload, read], tags=["materials"])
