"""HTTP edge of messaging: /api/v1/conversations."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from aiohttp import web

from ..keys import CHAT, GROUPS
from ..social.group_routes import group_json
from .model import GROUP, ConversationRef
from ..web.bodies import json_response, list_body, parse_body, query_int, query_limit
from ..web.routing import RouteTable
from ..web.session import caller, user_json
from .service import ConversationView, SendRequest

routes = RouteTable("conversations")


class MessageBody(msgspec.Struct):
    client_msg_id: str
    kind: str
    body: Any


class ReadBody(msgspec.Struct):
    seq: int


class FlagsBody(msgspec.Struct):
    muted: bool | None = None
    pinned: bool | None = None


async def _view_json(request: web.Request, view: ConversationView) -> dict[str, Any]:
    m = view.membership
    item: dict[str, Any] = {
        "conversation_id": m.conversation_id,
        "kind": m.kind,
        # The message's own JSON, made once and never failing (a bad row is a placeholder).
        "last_message": orjson.Fragment(view.last_message.json()) if view.last_message else None,
        "last_seq": m.last_seq,
        "read_seq": m.read_seq,
        "unread": view.unread,
        "muted": m.muted,
        "pinned": m.pinned,
        "mentioned": view.mentioned,
    }
    if view.peer is not None:
        item["peer"] = user_json(request, view.peer)
    if m.kind == GROUP:
        ref = ConversationRef.parse(m.conversation_id)
        assert ref.group_id is not None
        item["group"] = group_json(request, await request.app[GROUPS].get(ref.group_id))
    return item


@routes.get("/api/v1/conversations", "My conversations, newest activity first",
            query={"limit": "1 to 200, default 50", "cursor": "from next_cursor"})
async def list_conversations(request: web.Request) -> web.Response:
    claims = caller(request)
    views, cursor = await request.app[CHAT].conversations(claims.user_id, request.query.get("cursor"),
                                                          query_limit(request))
    return json_response(list_body([await _view_json(request, v) for v in views], cursor))


@routes.get("/api/v1/conversations/{cid}/messages", "A conversation's messages by seq, ascending",
            query={"before_seq": "the messages just before this seq", "after_seq": "the messages after this seq",
                   "limit": "1 to 200, default 50"})
async def history(request: web.Request) -> web.Response:
    claims = caller(request)
    messages, has_more = await request.app[CHAT].history(
        claims.user_id, request.match_info["cid"], query_int(request, "before_seq"),
        query_int(request, "after_seq"), query_limit(request))
    return json_response({"items": [orjson.Fragment(m.json()) for m in messages], "has_more": has_more})


@routes.post("/api/v1/conversations/{cid}/messages", "Send a message (same guarantees as WebSocket send)",
             body=MessageBody, responses={201: "the stored message", 200: "the original, for a repeated client_msg_id"})
async def post_message(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, MessageBody)
    message, created = await request.app[CHAT].send(claims.user_id, SendRequest(
        client_msg_id=body.client_msg_id, kind=body.kind, body=body.body,
        conversation_id=request.match_info["cid"]))
    return web.Response(body=message.json(), status=201 if created else 200, content_type="application/json")


@routes.post("/api/v1/conversations/{cid}/read", "Mark messages read up to a seq", body=ReadBody,
             responses={204: "read cursor moved"})
async def mark_read(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, ReadBody)
    await request.app[CHAT].read(claims.user_id, request.match_info["cid"], body.seq)
    return web.Response(status=204)


@routes.patch("/api/v1/conversations/{cid}", "Mute or pin a conversation", body=FlagsBody)
async def patch_conversation(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, FlagsBody)
    m = await request.app[CHAT].set_flags(claims.user_id, request.match_info["cid"], body.muted, body.pinned)
    return json_response({"conversation_id": m.conversation_id, "muted": m.muted, "pinned": m.pinned,
                          "read_seq": m.read_seq, "last_seq": m.last_seq})


__all__ = ["routes"]
