"""HTTP edge of sign-in by SMS code and of a user's phone number (issue 12, docs/protocol.md)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..keys import CORE
from ..web.bodies import json_response, parse_body
from ..web.routing import RouteTable
from ..web.session import caller, client_ip
from .routes import DeviceBody, token_set_json, valid_device
from .service import Device

routes = RouteTable("auth")


class SmsCodeBody(msgspec.Struct):
    phone: str


class SmsLoginBody(msgspec.Struct):
    phone: str
    code: str
    device: DeviceBody | None = None


class PhoneBindBody(msgspec.Struct):
    phone: str
    code: str


def _device(body: DeviceBody | None) -> Device:
    return valid_device(Device(body.id, body.name, body.platform)) if body is not None else Device()


@routes.post("/api/v1/auth/sms/code", "Send a 6-digit sign-in code to a phone by SMS", auth=False,
             body=SmsCodeBody,
             responses={202: "code sent: {expires_in, resend_in} in seconds", 422: "not a phone number",
                        429: "rate_limited: resend cooldown, hourly cap per phone or per IP, or the IP's auth limit"})
async def send_code(request: web.Request) -> web.Response:
    body = await parse_body(request, SmsCodeBody)
    _, expires_in, resend_in = await request.app[CORE].phones.request_code(body.phone, client_ip(request))
    return json_response({"expires_in": expires_in, "resend_in": resend_in}, status=202)


@routes.post("/api/v1/auth/sms/login", "Sign in with a phone number and its SMS code", auth=False,
             body=SmsLoginBody,
             responses={200: "token set", 201: "token set of the account just created (auth.sms_signup)",
                        401: "invalid_credentials: wrong, expired, used or used-up code",
                        403: "registration_closed (no account has the phone) or a disabled account",
                        429: "rate_limited"})
async def sms_login(request: web.Request) -> web.Response:
    body = await parse_body(request, SmsLoginBody)
    signed_in = await request.app[CORE].phones.sign_in(body.phone, body.code, _device(body.device),
                                                       client_ip(request))
    return json_response(token_set_json(request, signed_in.tokens), status=201 if signed_in.created else 200)


@routes.get("/api/v1/me/phone", "The signed-in user's phone number, masked",
            responses={200: '{"phone": "+86 138****8000"} or {"phone": null}'})
async def get_phone(request: web.Request) -> web.Response:
    masked = await request.app[CORE].phones.masked(caller(request).user_id)
    return json_response({"phone": masked})


@routes.put("/api/v1/me/phone", "Bind a phone number, verified by an SMS code, to the signed-in user",
            body=PhoneBindBody,
            responses={200: '{"phone": masked number}', 409: "another account has this phone number",
                       422: "not a phone number, or a wrong or expired code (field code)"})
async def bind_phone(request: web.Request) -> web.Response:
    body = await parse_body(request, PhoneBindBody)
    masked = await request.app[CORE].phones.bind(caller(request).user_id, body.phone, body.code)
    return json_response({"phone": masked})


@routes.delete("/api/v1/me/phone", "Remove the signed-in user's phone number", responses={204: "unbound"})
async def unbind_phone(request: web.Request) -> web.Response:
    await request.app[CORE].phones.unbind(caller(request).user_id)
    return web.Response(status=204)
