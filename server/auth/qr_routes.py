"""HTTP edge of QR sign-in: /api/v1/auth/qr/* (server/auth/qr.py has the rules)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..keys import CORE
from ..web.bodies import json_response, parse_body, query_int
from ..web.routing import RouteTable
from ..web.session import caller, client_ip, user_json
from .qr import MAX_WAIT_S
from .routes import token_set_json, valid_device
from .service import MAX_DEVICE_FIELD, Device, has_control_chars

routes = RouteTable("auth")


class QrDeviceBody(msgspec.Struct):
    """The browser's device-to-be; its id is always a new one."""

    name: str = ""
    platform: str = ""


class QrCreateBody(msgspec.Struct):
    device: QrDeviceBody | None = None


def _browser_device(request: web.Request, body: QrDeviceBody | None) -> Device:
    """The body's device, else one named after the browser's User-Agent."""
    if body is not None and body.name:
        return valid_device(Device("", body.name, body.platform))
    agent = "".join(ch for ch in request.headers.get("User-Agent", "")[:MAX_DEVICE_FIELD]
                    if not has_control_chars(ch))
    return valid_device(Device("", agent or "Browser", body.platform if body is not None else ""))


def _qr_id(request: web.Request) -> str:
    return request.match_info["qr_id"]


# Before the poll route: `{qr_id}` alone would also match `<id>.png`.
@routes.get("/api/v1/auth/qr/{qr_id}.png", "The QR sign-in session's code as a PNG image", auth=False,
            responses={200: "image/png", 404: "unknown session", 410: "the session has ended"},
            content_type="image/png")
async def qr_png(request: web.Request) -> web.Response:
    png = await request.app[CORE].qr.png(_qr_id(request))
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/auth/qr", "Start a QR sign-in session (the browser)", auth=False, body=QrCreateBody,
             responses={201: "{qr_id, poll_token, payload, expires_in}", 429: "rate_limited"})
async def qr_create(request: web.Request) -> web.Response:
    body = await parse_body(request, QrCreateBody)
    created = await request.app[CORE].qr.create(_browser_device(request, body.device), client_ip(request))
    return json_response({"qr_id": created.qr_id, "poll_token": created.poll_token, "payload": created.payload,
                          "expires_in": created.expires_in}, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/auth/qr/{qr_id}", "Poll a QR sign-in session (the browser that created it)", auth=False,
            query={"poll_token": "the poll_token the session was created with",
                   "wait": f"seconds to wait for a change, 0 to {MAX_WAIT_S} (default 0)"},
            responses={200: "{state, scanned_by?} and, once, the token set", 401: "wrong or missing poll_token",
                       404: "unknown session", 422: "wait out of range"})
async def qr_poll(request: web.Request) -> web.Response:
    wait = query_int(request, "wait", 0, MAX_WAIT_S) or 0
    result = await request.app[CORE].qr.poll(_qr_id(request), request.query.get("poll_token"), wait,
                                             client_ip(request))
    answer: dict[str, Any] = {"state": result.state}
    if result.scanned_by is not None:
        answer["scanned_by"] = user_json(request, result.scanned_by)
    if result.tokens is not None:
        answer.update(token_set_json(request, result.tokens))
    return json_response(answer, headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/auth/qr/{qr_id}/scan", "Scan a QR sign-in code (a signed-in phone)",
             responses={204: "scanned", 404: "unknown session", 409: "scanned by another account, or ended",
                        410: "expired"})
async def qr_scan(request: web.Request) -> web.Response:
    await request.app[CORE].qr.scan(_qr_id(request), caller(request).user_id)
    return web.Response(status=204)


@routes.post("/api/v1/auth/qr/{qr_id}/confirm", "Confirm a scanned QR sign-in (the user who scanned)",
             responses={204: "confirmed", 403: "another account scanned it", 404: "unknown session",
                        409: "not scanned yet, or ended", 410: "expired"})
async def qr_confirm(request: web.Request) -> web.Response:
    await request.app[CORE].qr.confirm(_qr_id(request), caller(request).user_id)
    return web.Response(status=204)


@routes.post("/api/v1/auth/qr/{qr_id}/cancel", "Refuse a scanned QR sign-in (the user who scanned)",
             responses={204: "cancelled", 403: "another account scanned it", 404: "unknown session",
                        409: "not scanned yet, or ended", 410: "expired"})
async def qr_cancel(request: web.Request) -> web.Response:
    await request.app[CORE].qr.cancel(_qr_id(request), caller(request).user_id)
    return web.Response(status=204)
