"""HTTP edge of the caller's devices: /api/v1/me/devices (server/auth/devices.py has the rules)."""

from __future__ import annotations

from aiohttp import web

from ..keys import CORE
from ..web.bodies import json_response, list_body
from ..web.routing import RouteTable
from ..web.session import caller

routes = RouteTable("devices")


@routes.get("/api/v1/me/devices", "Your signed-in devices",
            responses={200: "{items: [{id, name, platform, created_at, last_seen_at, ip, current}], next_cursor}"})
async def my_devices(request: web.Request) -> web.Response:
    claims = caller(request)
    devices = await request.app[CORE].devices.signed_in(claims.user_id)
    return json_response(list_body([
        {"id": d.id, "name": d.name, "platform": d.platform, "created_at": d.created_at,
         "last_seen_at": d.last_seen_at, "ip": d.ip, "current": d.id == claims.device_id}
        for d in devices], None))


@routes.delete("/api/v1/me/devices/{device_id}", "Sign one of your devices out (this one too: a logout)",
               responses={204: "signed out: its sockets get kick signed_out", 404: "not one of your signed-in devices"})
async def sign_out_device(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[CORE].devices.sign_out(claims.user_id, request.match_info["device_id"], actor_id=claims.user_id)
    return web.Response(status=204)
