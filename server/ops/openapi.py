"""The OpenAPI 3.1 document, generated from the routes the app really has."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from .. import __version__
from ..web.routing import spec_of

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def build_openapi(app: web.Application, server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    body_types: list[type] = []
    operations: list[tuple[str, str, Any]] = []
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if spec is None or route.method == "HEAD":
            continue
        operations.append((route.method, spec.path, spec))
        if spec.body is not None:
            body_types.append(spec.body)
    refs: dict[type, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    if body_types:
        schemas, components_found = msgspec.json.schema_components(
            body_types, ref_template="#/components/schemas/{name}")
        refs = dict(zip(body_types, schemas))
        components.update(components_found)
    for method, path, spec in operations:
        path_params = _PARAM.findall(path)
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path_params
            ] + [
                {"name": name, "in": "query", "required": False, "description": text,
                 "schema": {"type": "string"}} for name, text in spec.query.items()
            ],
            "responses": {
                str(code): {"description": text} for code, text in (spec.responses or {200: "OK"}).items()
            },
        }
        operation["responses"].setdefault(
            "default", {"description": "an error", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}})
        if spec.auth:
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[spec.body]}},
            }
        openapi_path = _PARAM.sub(r"{\1}", path)
        paths.setdefault(openapi_path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Lucky", "version": __version__,
                 "description": "Self-hosted instant messaging. WebSocket protocol: docs/protocol.md."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
