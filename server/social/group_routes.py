"""HTTP edge of groups: /api/v1/groups."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from ..errors import validation_failed
from ..ids import parse_id
from ..keys import AVATARS, CORE, GROUPS
from ..storage.stores.groups import GroupRow, JoinRequestRow, MemberRow
from ..storage.stores.users import UserStore
from ..files.ranges import etag_matches
from ..web.bodies import json_response, list_body, parse_body, path_id, query_limit, wire_id
from ..web.routing import RouteTable
from ..web.session import caller, user_json

routes = RouteTable("groups")


class CreateGroup(msgspec.Struct):
    name: str
    member_ids: list[str | int] = []
    avatar_file_id: str | None = None


class PatchGroup(msgspec.Struct):
    name: str | None = None
    announcement: str | None = None
    join_policy: str | None = None
    muted_all: bool | None = None


class UserIds(msgspec.Struct):
    user_ids: list[str | int]


class PatchMember(msgspec.Struct):
    role: str | None = None
    muted_until: int | None | msgspec.UnsetType = msgspec.UNSET


class Transfer(msgspec.Struct):
    user_id: str | int


class JoinBody(msgspec.Struct):
    message: str = ""


def group_json(request: web.Request, g: GroupRow) -> dict[str, Any]:
    base = request.app[CORE].config.public_url
    return {
        "id": str(g.id), "name": g.name, "owner_id": str(g.owner_id), "announcement": g.announcement,
        "join_policy": g.join_policy, "muted_all": g.muted_all, "member_count": g.member_count,
        "avatar_url": f"{base}/api/v1/groups/{g.id}/avatar", "dismissed": g.dismissed, "created_at": g.created_at,
    }


async def members_json(request: web.Request, members: list[MemberRow]) -> list[dict[str, Any]]:
    users = await UserStore(request.app[CORE].db).by_ids([m.user_id for m in members])
    return [{"user": user_json(request, users[m.user_id]), "role": m.role, "muted_until": m.muted_until,
             "joined_at": m.joined_at} for m in members if m.user_id in users]


async def join_request_json(request: web.Request, r: JoinRequestRow) -> dict[str, Any]:
    users = await UserStore(request.app[CORE].db).by_ids([r.user_id])
    return {"id": str(r.id), "group_id": str(r.group_id),
            "user": user_json(request, users[r.user_id]) if r.user_id in users else None,
            "message": r.message, "state": r.state, "created_at": r.created_at}


def _target(request: web.Request) -> int:
    return path_id(request, "user_id")


@routes.post("/api/v1/groups", "Create a group with initial members", body=CreateGroup,
             responses={201: "the group"})
async def create_group(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, CreateGroup)
    make_avatar: Callable[[], Awaitable[int]] | None = None
    if body.avatar_file_id is not None:
        source = wire_id(body.avatar_file_id)
        if source is None:
            raise validation_failed("avatar_file_id", "a file id (a decimal string)")
        files = request.app[CORE].files

        async def make_avatar() -> int:
            # Called by `create` once the rest is checked (the member ids first: no work for a
            # refused call). The group shows a new avatar image, never the file itself; 404
            # unless the creator can read the file, 422 unless it is an image.
            return (await files.make_avatar(claims.user_id, source)).id

    group = await request.app[GROUPS].create(claims.user_id, body.name, body.member_ids, make_avatar)
    return json_response(group_json(request, group), status=201)


@routes.get("/api/v1/groups", "My groups")
async def my_groups(request: web.Request) -> web.Response:
    claims = caller(request)
    groups = await request.app[GROUPS].mine(claims.user_id)
    return json_response(list_body([group_json(request, g) for g in groups], None))


@routes.get("/api/v1/groups/{group_id}", "One group")
async def get_group(request: web.Request) -> web.Response:
    return json_response(group_json(request, await request.app[GROUPS].get(path_id(request, "group_id"))))


@routes.patch("/api/v1/groups/{group_id}", "Rename, announce, set the join policy, mute all", body=PatchGroup)
async def patch_group(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, PatchGroup)
    group = await request.app[GROUPS].update(claims.user_id, path_id(request, "group_id"), name=body.name,
                                             announcement=body.announcement, join_policy=body.join_policy,
                                             muted_all=body.muted_all)
    return json_response(group_json(request, group))


@routes.delete("/api/v1/groups/{group_id}", "Dismiss a group (owner)", responses={204: "dismissed"})
async def dismiss(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[GROUPS].dismiss(claims.user_id, path_id(request, "group_id"))
    return web.Response(status=204)


@routes.get("/api/v1/groups/{group_id}/members", "A group's members (members only), paged",
            query={"limit": "1 to 200 (default 50)", "cursor": "from the previous page's next_cursor"})
async def list_members(request: web.Request) -> web.Response:
    claims = caller(request)
    limit = query_limit(request)
    members, next_cursor = await request.app[GROUPS].member_list(
        claims.user_id, path_id(request, "group_id"), request.query.get("cursor"), limit)
    return json_response(list_body(await members_json(request, members), next_cursor))


@routes.post("/api/v1/groups/{group_id}/members", "Add members", body=UserIds, responses={201: "the new members"})
async def invite(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, UserIds)
    added = await request.app[GROUPS].invite(claims.user_id, path_id(request, "group_id"), body.user_ids)
    return json_response(list_body(await members_json(request, added), None), status=201)


@routes.post("/api/v1/groups/{group_id}/join", "Join (open), or ask to (approval)", body=JoinBody,
             responses={200: "the member", 202: "the join request", 403: "invite only"})
async def join(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, JoinBody)
    kind, row = await request.app[GROUPS].join(claims.user_id, path_id(request, "group_id"), body.message)
    if isinstance(row, MemberRow):
        return json_response((await members_json(request, [row]))[0])
    return json_response(await join_request_json(request, row), status=202)


@routes.delete("/api/v1/groups/{group_id}/members/{user_id}", "Remove a member, or leave (your own id)",
               responses={204: "done"})
async def remove_member(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[GROUPS].remove(claims.user_id, path_id(request, "group_id"), _target(request))
    return web.Response(status=204)


@routes.patch("/api/v1/groups/{group_id}/members/{user_id}", "Change a member's role or mute them", body=PatchMember)
async def patch_member(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, PatchMember)
    mute_given = body.muted_until is not msgspec.UNSET
    member = await request.app[GROUPS].set_member(
        claims.user_id, path_id(request, "group_id"), _target(request), role=body.role,
        muted_until=body.muted_until if isinstance(body.muted_until, int) else None, mute_given=mute_given)
    return json_response((await members_json(request, [member]))[0])


@routes.post("/api/v1/groups/{group_id}/transfer", "Make another member the owner", body=Transfer)
async def transfer(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, Transfer)
    target = parse_id(body.user_id)
    if target is None:
        raise validation_failed("user_id", "a user id")
    group = await request.app[GROUPS].transfer(claims.user_id, path_id(request, "group_id"), target)
    return json_response(group_json(request, group))


@routes.get("/api/v1/groups/{group_id}/avatar", "The group's avatar (PNG)", content_type="image/png")
async def avatar(request: web.Request) -> web.Response:
    service = request.app[GROUPS]
    group_id = path_id(request, "group_id")
    state = await service.state(group_id)
    files = request.app[CORE].files
    chosen = await files.store.file(state.group.avatar_file_id) if state.group.avatar_file_id is not None else None
    # Set at creation: the avatar image made then, as its thumbnail. A group of an older
    # server may name a private file instead: that is never shown to everyone (the grid is).
    if chosen is not None and chosen.shared:
        etag = f'"{chosen.md5}-avatar{files.config.thumbnail_px}"'
        headers = {"ETag": etag, "Cache-Control": "private, max-age=60"}
        if etag_matches(request.headers.get("If-None-Match"), etag):
            return web.Response(status=304, headers=headers)
        thumbnail, _ = await files.thumbnail(chosen)
        png = await request.app[AVATARS].png_of(f"{chosen.md5}:{files.config.thumbnail_px}", thumbnail)
        return web.Response(body=png, content_type="image/png", headers=headers)
    users = await UserStore(request.app[CORE].db).by_ids(list(state.ordered[:9]))
    tiles = [(uid, users[uid].display_name) for uid in state.ordered[:9] if uid in users]
    png = await request.app[AVATARS].grid(tiles)
    etag = '"' + hashlib.sha256(repr(tiles).encode()).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=png, content_type="image/png", headers={"ETag": etag, "Cache-Control": "private, max-age=60"})


@routes.get("/api/v1/groups/{group_id}/requests", "Pending join requests (admins)",
            query={"limit": "1 to 200", "cursor": "next_cursor of the previous page"})
async def join_requests(request: web.Request) -> web.Response:
    claims = caller(request)
    limit = query_limit(request)
    rows, next_cursor = await request.app[GROUPS].join_requests(
        claims.user_id, path_id(request, "group_id"), request.query.get("cursor") or None, limit)
    return json_response(list_body([await join_request_json(request, r) for r in rows], next_cursor))


@routes.post("/api/v1/groups/{group_id}/requests/{request_id}/accept", "Accept a join request")
async def accept_request(request: web.Request) -> web.Response:
    claims = caller(request)
    row = await request.app[GROUPS].answer_request(claims.user_id, path_id(request, "group_id"),
                                                   path_id(request, "request_id"), True)
    return json_response(await join_request_json(request, row))


@routes.post("/api/v1/groups/{group_id}/requests/{request_id}/reject", "Reject a join request")
async def reject_request(request: web.Request) -> web.Response:
    claims = caller(request)
    row = await request.app[GROUPS].answer_request(claims.user_id, path_id(request, "group_id"),
                                                   path_id(request, "request_id"), False)
    return json_response(await join_request_json(request, row))

