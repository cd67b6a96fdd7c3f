"""HTTP edge of accounts: /api/v1/auth/*."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..errors import validation_failed
from ..keys import CORE
from ..web.bodies import json_response, parse_body
from ..web.routing import RouteTable
from ..web.session import caller, client_ip, user_json
from .service import MAX_DEVICE_FIELD, Device, TokenSet, has_control_chars

routes = RouteTable("auth")


class DeviceBody(msgspec.Struct):
    id: str = ""
    name: str = ""
    platform: str = ""


class RegisterBody(msgspec.Struct):
    username: str
    password: str | None = None
    encrypted_password: str | None = None
    display_name: str | None = None
    device: DeviceBody | None = None


class LoginBody(msgspec.Struct):
    username: str
    password: str | None = None
    encrypted_password: str | None = None
    device: DeviceBody | None = None


class RefreshBody(msgspec.Struct):
    refresh_token: str


def _device(body: DeviceBody | None) -> Device:
    if body is None:
        return Device()
    return valid_device(Device(body.id, body.name, body.platform))


def valid_device(device: Device) -> Device:
    """`device` if each field is short and free of control characters; 422 naming it otherwise."""
    for name in ("id", "name", "platform"):
        value = getattr(device, name)
        if len(value) > MAX_DEVICE_FIELD:
            raise validation_failed(f"device.{name}", f"at most {MAX_DEVICE_FIELD} characters")
        if has_control_chars(value):
            raise validation_failed(f"device.{name}", "no control characters")
    return device


def token_set_json(request: web.Request, tokens: TokenSet) -> dict[str, Any]:
    return {
        "user": user_json(request, tokens.user),
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
    }


@routes.get("/api/v1/auth/public-key", "The RSA key for encrypting a password in transit", auth=False)
async def public_key(request: web.Request) -> web.Response:
    return json_response(request.app[CORE].auth.public_key())


@routes.post("/api/v1/auth/register", "Create an account and sign in", auth=False, body=RegisterBody,
             responses={201: "token set", 403: "registration_closed", 409: "username taken"})
async def register(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await parse_body(request, RegisterBody)
    tokens = await core.auth.register(body.username, body.password, body.display_name, _device(body.device),
                                      client_ip(request), encrypted_password=body.encrypted_password)
    return json_response(token_set_json(request, tokens), status=201)


@routes.post("/api/v1/auth/login", "Sign in with a password", auth=False, body=LoginBody,
             responses={200: "token set", 401: "invalid_credentials", 429: "rate_limited"})
async def login(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await parse_body(request, LoginBody)
    tokens = await core.auth.login(body.username, body.password, _device(body.device), client_ip(request),
                                   encrypted_password=body.encrypted_password)
    return json_response(token_set_json(request, tokens))


@routes.post("/api/v1/auth/refresh", "Rotate a refresh token for a new token set", auth=False,
             body=RefreshBody, responses={200: "token set", 401: "unauthorized"})
async def refresh(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await parse_body(request, RefreshBody)
    tokens = await core.auth.refresh(body.refresh_token, client_ip(request))
    return json_response(token_set_json(request, tokens))


@routes.post("/api/v1/auth/logout", "Sign this device out", responses={204: "signed out"})
async def logout(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[CORE].auth.logout(claims)
    return web.Response(status=204)
