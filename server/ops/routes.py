"""Operations endpoints: /healthz, /readyz, /metrics, /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import unavailable

from ..keys import CORE, METRICS
from ..storage.sqlite import SqliteDatabase
from ..web.bodies import json_response
from ..web.routing import RouteTable
from .health import check_all
from .openapi import build_openapi

routes = RouteTable("operations")


@routes.get("/healthz", "The process answers", auth=False)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz", "Database, bus and file storage are reachable (else 503)", auth=False,
            responses={200: "ready", 503: "a backend is down"})
async def readyz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    checks = await check_all(core.config, core.db, core.files.blobs)
    ready = all(c.ok for c in checks)
    body: dict[str, Any] = {
        "status": "ready" if ready else "unavailable",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    if not ready:
        # The contract's error object too, so a client that only knows that shape understands.
        down = ", ".join(c.name for c in checks if not c.ok)
        body.update(unavailable(f"Not ready: {down} unreachable.").to_body())
    return json_response(body, status=200 if ready else 503)


@routes.get("/metrics", "Prometheus metrics", auth=False, content_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    core = request.app[CORE]
    registry = request.app[METRICS]
    registry.users.set(await core.users.count())
    await registry.refresh()
    if isinstance(core.db, SqliteDatabase):
        registry.db_batches.set(core.db.batches_committed)
    return web.Response(body=registry.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


@routes.get("/api/v1/openapi.json", "This API described as OpenAPI 3.1", auth=False)
async def openapi(request: web.Request) -> web.Response:
    return json_response(build_openapi(request.app, request.app[CORE].config.public_url))
