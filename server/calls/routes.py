"""HTTP edge of calls: `GET /api/v1/calls/ice-servers` (signalling itself runs over `/ws`)."""

from __future__ import annotations

from aiohttp import web

from ..keys import CORE
from ..web.bodies import json_response
from ..web.routing import RouteTable
from ..web.session import caller
from .ice import ice_servers

routes = RouteTable("calls")


@routes.get("/api/v1/calls/ice-servers", "STUN and TURN servers for WebRTC, TURN with time-limited credentials",
            responses={200: "{ice_servers: [{urls, username?, credential?}], ttl, sfu_url?}",
                       401: "missing, expired or revoked token"})
async def get_ice_servers(request: web.Request) -> web.Response:
    core = request.app[CORE]
    answer = ice_servers(core.config.calls, caller(request).user_id, core.clock.now_ms() // 1000)
    # Credentials are per user and time-limited: no cache may keep them or hand them on.
    return json_response(answer, headers={"Cache-Control": "no-store"})
