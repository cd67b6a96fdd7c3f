"""HTTP edge of friends and blocks: /api/v1/friends, /api/v1/blocks."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..errors import validation_failed
from ..ids import parse_id
from ..keys import CORE, FRIENDS
from ..storage.stores.social import FriendRequestRow
from ..storage.stores.users import UserStore
from ..web.bodies import json_response, list_body, parse_body, path_id, query_limit
from ..web.routing import RouteTable
from ..web.session import caller, user_json

routes = RouteTable("friends")


class FriendRequestBody(msgspec.Struct):
    user_id: str | int
    message: str = ""


async def request_json(request: web.Request, rows: list[FriendRequestRow]) -> list[dict[str, Any]]:
    ids = {uid for r in rows for uid in (r.from_id, r.to_id)}
    users = await UserStore(request.app[CORE].db).by_ids(sorted(ids))
    return [{
        "id": str(r.id),
        "from_user": user_json(request, users[r.from_id]) if r.from_id in users else None,
        "to_user": user_json(request, users[r.to_id]) if r.to_id in users else None,
        "message": r.message,
        "state": r.state,
        "created_at": r.created_at,
    } for r in rows]


@routes.post("/api/v1/friends/requests", "Ask a user to be friends", body=FriendRequestBody,
             responses={201: "the request", 200: "an existing request, or theirs accepted", 403: "blocked"})
async def send_request(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, FriendRequestBody)
    to_id = parse_id(body.user_id)
    if to_id is None:
        raise validation_failed("user_id", "a user id")
    row, created = await request.app[FRIENDS].send_request(claims.user_id, to_id, body.message)
    return json_response((await request_json(request, [row]))[0], status=201 if created else 200)


@routes.get("/api/v1/friends/requests", "Friend requests to me (in) or from me (out), newest first",
            query={"direction": "in (default) or out", "limit": "1 to 200", "cursor": "from next_cursor"})
async def list_requests(request: web.Request) -> web.Response:
    claims = caller(request)
    direction = request.query.get("direction", "in")
    if direction not in ("in", "out"):
        raise validation_failed("direction", "in or out")
    rows, cursor = await request.app[FRIENDS].requests(claims.user_id, direction == "in",
                                                       request.query.get("cursor"), query_limit(request))
    return json_response(list_body(await request_json(request, rows), cursor))


@routes.post("/api/v1/friends/requests/{request_id}/accept", "Accept a friend request")
async def accept(request: web.Request) -> web.Response:
    claims = caller(request)
    row = await request.app[FRIENDS].accept(claims.user_id, path_id(request, "request_id"))
    return json_response((await request_json(request, [row]))[0])


@routes.post("/api/v1/friends/requests/{request_id}/reject", "Reject a friend request")
async def reject(request: web.Request) -> web.Response:
    claims = caller(request)
    row = await request.app[FRIENDS].reject(claims.user_id, path_id(request, "request_id"))
    return json_response((await request_json(request, [row]))[0])


@routes.get("/api/v1/friends", "My friends", query={"limit": "1 to 200", "cursor": "from next_cursor"})
async def list_friends(request: web.Request) -> web.Response:
    claims = caller(request)
    items, cursor = await request.app[FRIENDS].friends(claims.user_id, request.query.get("cursor"),
                                                       query_limit(request))
    return json_response(list_body([{"user": user_json(request, u), "since": since} for u, since in items], cursor))


@routes.delete("/api/v1/friends/{user_id}", "End a friendship", responses={204: "done", 404: "not friends"})
async def unfriend(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[FRIENDS].unfriend(claims.user_id, path_id(request, "user_id"))
    return web.Response(status=204)


@routes.get("/api/v1/blocks", "The users I block")
async def list_blocks(request: web.Request) -> web.Response:
    claims = caller(request)
    users = await request.app[FRIENDS].blocks(claims.user_id)
    return json_response(list_body([user_json(request, u) for u in users], None))


@routes.put("/api/v1/blocks/{user_id}", "Block a user's one-to-one messages and requests", responses={204: "done"})
async def block(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[FRIENDS].block(claims.user_id, path_id(request, "user_id"))
    return web.Response(status=204)


@routes.delete("/api/v1/blocks/{user_id}", "Unblock a user", responses={204: "done"})
async def unblock(request: web.Request) -> web.Response:
    claims = caller(request)
    await request.app[FRIENDS].unblock(claims.user_id, path_id(request, "user_id"))
    return web.Response(status=204)
