"""HTTP edge of short links: /api/v1/links and the public redirect `GET /s/{code}`."""

from __future__ import annotations

import html
from typing import Any

import msgspec
from aiohttp import web

from ..keys import CORE
from ..storage.stores.links import LinkRecord
from ..web.bodies import json_response, list_body, parse_body, query_int, query_limit
from ..web.middleware import error_response
from ..web.routing import RouteTable
from ..web.session import caller
from .service import DEFAULT_STATS_DAYS, MAX_STATS_DAYS, LinkGone, LinkService

routes = RouteTable("links")


class CreateLinkBody(msgspec.Struct):
    url: str
    expires_at: int | None = None
    code: str | None = None


def _links(request: web.Request) -> LinkService:
    return request.app[CORE].links


def link_json(links: LinkService, link: LinkRecord) -> dict[str, Any]:
    """A link as the protocol shapes it."""
    return {"code": link.code, "short_url": links.short_url(link.code), "url": link.url,
            "expires_at": link.expires_at, "visits": link.visits, "created_at": link.created_at,
            "owner_id": str(link.owner_id)}


@routes.post("/api/v1/links", "Create a short link (or get mine to the same URL)", body=CreateLinkBody,
             responses={201: "the link", 200: "my existing link to the same URL", 409: "the code is taken",
                        422: "not an http(s) URL, a bad code, or an expiry in the past", 429: "too many links"})
async def create_link(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, CreateLinkBody)
    links = _links(request)
    link, created = await links.create(claims.user_id, body.url, code=body.code, expires_at=body.expires_at)
    return json_response(link_json(links, link), status=201 if created else 200)


@routes.get("/api/v1/links", "My short links, newest first", query={"limit": "1 to 200", "cursor": "from next_cursor"})
async def list_links(request: web.Request) -> web.Response:
    claims = caller(request)
    links = _links(request)
    page, cursor = await links.list_owned(claims.user_id, request.query.get("cursor"), query_limit(request))
    return json_response(list_body([link_json(links, link) for link in page], cursor))


@routes.get("/api/v1/links/{code}", "A short link (its owner or an admin)", responses={200: "the link"})
async def get_link(request: web.Request) -> web.Response:
    links = _links(request)
    link = await links.get(request.match_info["code"], caller(request).user_id)
    return json_response(link_json(links, link))


@routes.delete("/api/v1/links/{code}", "Delete a short link (its owner or an admin)", responses={204: "deleted"})
async def delete_link(request: web.Request) -> web.Response:
    await _links(request).delete(request.match_info["code"], caller(request).user_id)
    return web.Response(status=204)


@routes.get("/api/v1/links/{code}/stats", "A short link's visits per day (its owner or an admin)",
            query={"days": f"1 to {MAX_STATS_DAYS} (default {DEFAULT_STATS_DAYS}): the last days, today included"})
async def link_stats(request: web.Request) -> web.Response:
    days = query_int(request, "days", 1, MAX_STATS_DAYS)
    stats = await _links(request).stats(request.match_info["code"], caller(request).user_id,
                                        DEFAULT_STATS_DAYS if days is None else days)
    return json_response({"code": stats.code, "visits": stats.visits,
                          "days": [{"day": day, "visits": visits} for day, visits in stats.days]})


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}
code{{background:#f3f3f3;padding:0 .2em}}</style></head>
<body><h1>{title}</h1><p>{message}</p><p>Short link: <code>{code}</code></p></body></html>
"""


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


# Not in openapi.json (like the chat page): a browser's route whose errors are HTML pages by
# the contract, not the API's JSON errors.
@routes.get("/s/{code}", "Follow a short link: 302 to its URL (404 unknown or deleted, 410 expired)", auth=False,
            content_type="text/html", documented=False,
            responses={302: "to the link's URL", 404: "unknown or deleted (an HTML page)", 410: "expired (an HTML page)"})
async def follow_link(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    try:
        url = await _links(request).follow(code)
    except LinkGone as gone:
        # A person follows a short link in a browser: a page. A client that asks for JSON
        # only gets the contract's error.
        if _wants_json(request):
            return error_response(gone)
        title = "Link expired" if gone.status == 410 else "Link not found"
        page = _PAGE.format(title=title, message=html.escape(gone.message), code=html.escape(code))
        return web.Response(text=page, status=gone.status, content_type="text/html",
                            headers={"Cache-Control": "no-store"})
    # no-store: a cached redirect would skip the count, and a deleted link would live on.
    return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
