"""HTTP edge of profiles: /api/v1/me and /api/v1/users."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..errors import validation_failed
from ..keys import CORE
from ..web.bodies import json_response, list_body, parse_body, path_id, query_limit, wire_id
from ..web.routing import RouteTable
from ..web.session import caller, user_json

routes = RouteTable("users")


class MePatch(msgspec.Struct):
    display_name: str | None = None
    avatar_file_id: str | None | msgspec.UnsetType = msgspec.UNSET
    password: str | None = None
    old_password: str | None = None
    # PROTOCOL.md: encrypted_password "is accepted wherever a password is".
    encrypted_password: str | None = None
    encrypted_old_password: str | None = None


@routes.get("/api/v1/me", "The signed-in user")
async def get_me(request: web.Request) -> web.Response:
    claims = caller(request)
    user = await request.app[CORE].users.get(claims.user_id)
    return json_response(user_json(request, user))


@routes.patch("/api/v1/me", "Edit the signed-in user's profile or password", body=MePatch)
async def patch_me(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, MePatch)
    avatar_given = body.avatar_file_id is not msgspec.UNSET
    avatar: int | None = None
    if isinstance(body.avatar_file_id, str):
        avatar = wire_id(body.avatar_file_id)
        if avatar is None:
            raise validation_failed("avatar_file_id", "an id (a decimal string) or null")
    auth = request.app[CORE].auth
    password = old_password = None
    if body.password is not None or body.encrypted_password is not None:
        password = auth.resolve_password(body.password, body.encrypted_password)
    if body.old_password is not None or body.encrypted_old_password is not None:
        old_password = auth.resolve_password(body.old_password, body.encrypted_old_password, "old_password")
    user = await request.app[CORE].users.update_me(
        claims.user_id, claims.family_id, display_name=body.display_name, avatar_file_id=avatar,
        avatar_given=avatar_given, password=password, old_password=old_password)
    return json_response(user_json(request, user))


@routes.get("/api/v1/users/{user_id}", "One user by id")
async def get_user(request: web.Request) -> web.Response:
    user = await request.app[CORE].users.get(path_id(request, "user_id"))
    return json_response(user_json(request, user))


@routes.get("/api/v1/users", "Search users by username prefix",
            query={"q": "username prefix (case-insensitive)", "limit": "1 to 200, default 50",
                   "cursor": "from next_cursor"})
async def search_users(request: web.Request) -> web.Response:
    limit = query_limit(request)
    page = await request.app[CORE].users.search(request.query.get("q", ""), request.query.get("cursor"), limit)
    return json_response(list_body([user_json(request, u) for u in page.items], page.next_cursor))
