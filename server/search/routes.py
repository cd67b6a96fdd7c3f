"""HTTP edge of search: GET /api/v1/search/messages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..chat.model import ConversationRef
from ..keys import SEARCH
from ..web.bodies import json_response, list_body, query_limit
from ..web.routing import RouteTable
from ..web.session import caller

routes = RouteTable("search")


@routes.get("/api/v1/search/messages", "Full-text search over my conversations, best match first",
            query={"q": "words or characters to find (Chinese included)", "conversation_id": "only this one",
                   "limit": "1 to 200", "cursor": "from next_cursor"})
async def search_messages(request: web.Request) -> web.Response:
    claims = caller(request)
    cid = request.query.get("conversation_id")
    if cid is not None:
        ConversationRef.parse(cid)
    hits, cursor = await request.app[SEARCH].search(claims.user_id, request.query.get("q", ""), cid,
                                                    request.query.get("cursor"), query_limit(request))
    items: list[dict[str, Any]] = [{**hit.message.to_dict(), "snippet": hit.snippet} for hit in hits]
    return json_response(list_body(items, cursor))
