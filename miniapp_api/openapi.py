"""The OpenAPI document at /schema, with error responses described as problem details."""

from __future__ import annotations

import msgspec
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    PathItem,
    Reference,
    Schema,
    SecurityScheme,
)

from miniapp_api.config import ApiConfig
from miniapp_api.problems import PROBLEM_MEDIA_TYPE, Problem

OPENAPI_PATH = "/schema"
BEARER_SCHEME = "BearerToken"
_REF = "#/components/schemas/{name}"


def openapi_config(config: ApiConfig) -> OpenAPIConfig:
    """Served at /schema (/schema/openapi.json for machines); bearer auth unless a route opts out."""
    return OpenAPIConfig(
        title=config.title,
        version=config.version,
        path=OPENAPI_PATH,
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
        security=[{BEARER_SCHEME: []}],
    )


def document_problems(app: Litestar) -> None:
    """Rewrite litestar's generic error bodies in the document as our Problem schema."""
    # litestar documents errors as {status_code, detail, extra}; our handler never sends that.
    document = app.openapi_schema
    _, components = msgspec.json.schema_components([Problem], ref_template=_REF)
    document.components.schemas = {**(document.components.schemas or {}), **components}
    problem = {PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(ref=_REF.format(name="Problem")))}
    for path_item in (document.paths or {}).values():
        for operation in _operations(path_item):
            responses = operation.responses if operation.responses is not None else {}
            for response in responses.values():
                if isinstance(response, OpenAPIResponse) and _is_litestar_error(response):
                    response.content = dict(problem)
            if operation.security != [{}]:
                responses.setdefault(
                    "401",
                    OpenAPIResponse(description="Missing or invalid bearer token", content=dict(problem)),
                )
            operation.responses = responses


def _operations(path_item: PathItem) -> list[Operation]:
    candidates = (path_item.get, path_item.put, path_item.post, path_item.delete, path_item.patch)
    return [operation for operation in candidates if operation is not None]


def _is_litestar_error(response: OpenAPIResponse) -> bool:
    for media in (response.content or {}).values():
        schema = media.schema
        if isinstance(schema, Schema) and schema.one_of:
            schema = schema.one_of[0]
        if isinstance(schema, Schema) and {"status_code", "detail"} <= set(schema.properties or {}):
            return True
    return False
