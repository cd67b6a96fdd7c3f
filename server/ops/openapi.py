"""The OpenAPI 3.1 document, generated from the routes the app really has.

Request bodies come from the msgspec Structs the handlers decode; path and query parameters
are typed by the contract's naming rules (PROTOCOL.md, "Conventions"), so that a generator
such as schemathesis (tests/fuzz) makes values a server must accept as well as ones it must
refuse.
"""

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

# PROTOCOL.md: every id is a decimal string; a conversation id is `p:<a>:<b>` or `g:<group>`.
_ID = {"type": "string", "pattern": "^[0-9]{1,20}$"}
_CONVERSATION_ID = {"type": "string", "pattern": "^(p:[0-9]{1,20}:[0-9]{1,20}|g:[0-9]{1,20})$"}
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "cid": _CONVERSATION_ID,
    "index": {"type": "integer", "minimum": 0},
    "qr_id": {"type": "string"},  # a random token (server/auth/qr.py), not a decimal id
    "device_id": {"type": "string"},  # a client's own device id, not a Lucky id
}
# Query parameters whose meaning the contract fixes by name: lists page with `limit` (1 to
# 200) and an opaque `cursor`; history pages by seq; times are epoch seconds or milliseconds.
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 200},
    "before_seq": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1},
    "after_seq": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1},
    "wait": {"type": "integer", "minimum": 0, "maximum": 30},
    "exp": {"type": "integer", "minimum": 0},
    "direction": {"type": "string", "enum": ["in", "out"]},
    "conversation_id": _CONVERSATION_ID,
    "device_id": {"type": "string"},  # a client's own device id (releases' rollout), not a Lucky id
}
# Request bodies that are not JSON, which a RouteSpec does not describe.
_RAW_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/files"): {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}},
    ("PUT", "/api/v1/uploads/{upload_id}/chunks/{index}"): {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary"}}},
    ("POST", "/api/v1/admin/releases"): {"multipart/form-data": {"schema": {
        "type": "object", "required": ["platform", "version", "file"],
        "properties": {**{name: {"type": "string"} for name in (
            "platform", "version", "channel", "notes", "min_version", "rollout", "arch", "signature", "publish")},
            "file": {"type": "string", "format": "binary"}}}}},
}


def _schema(name: str, named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A parameter's schema: fixed by its name (`named`), an id for `*_id`, else a string."""
    if name in named:
        return named[name]
    return _ID if name.endswith("_id") else {"type": "string"}


def build_openapi(app: web.Application, server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    body_types: list[type] = []
    operations: list[tuple[str, str, Any]] = []
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if spec is None or not spec.documented or route.method == "HEAD":
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
                {"name": p, "in": "path", "required": True, "schema": _schema(p, _PATH_SCHEMAS)} for p in path_params
            ] + [
                {"name": name, "in": "query", "required": False, "description": text,
                 "schema": _schema(name, _QUERY_SCHEMAS)} for name, text in spec.query.items()
            ],
            "responses": {
                str(code): {"description": text} for code, text in (spec.responses or {200: "OK"}).items()
            },
        }
        operation["responses"].setdefault(
            "default", {"description": "an error", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}})
        if spec.auth or spec.admin:
            operation["security"] = [{"bearer": []}]
        if spec.admin:
            operation["x-lucky-admin"] = True
            operation["description"] = "Admin accounts only: another signed-in user gets 403 forbidden."
            operation["responses"].setdefault("403", {"description": "not an admin account"})
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[spec.body]}},
            }
        openapi_path = _PARAM.sub(r"{\1}", path)
        raw_body = _RAW_BODIES.get((method, openapi_path))
        if raw_body is not None:
            operation["requestBody"] = {"required": True, "content": raw_body}
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
