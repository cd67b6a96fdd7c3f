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


@routes.get("/readyz", "Database and file storage are reachable (else 503); Redis down is `degraded`",
            auth=False, responses={200: "ready, or degraded (Redis down)", 503: "the database or file storage is down"})
async def readyz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    checks = await check_all(core.config, core.db, core.files.blobs)
    # Redis down does not make a node unready: it still takes sockets, stores messages and
    # delivers to its own sockets; pushes to other nodes wait in the outbox until Redis is back.
    ready = all(c.ok for c in checks if c.name != "redis")
    bus_ok, bus_detail = core.bus.status()
    degraded = ready and not (bus_ok and all(c.ok for c in checks))
    body: dict[str, Any] = {
        "status": "degraded" if degraded else "ready" if ready else "unavailable",
        "node": core.bus.instance,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        "bus": {"ok": bus_ok, "detail": bus_detail, "nodes": core.bus.nodes_online()},
    }
    if degraded:
        body["detail"] = "Redis is unreachable: messages are stored and delivered on this node; " \
                         "delivery to other nodes resumes from the outbox when it is back."
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
