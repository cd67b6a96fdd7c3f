"""`GET /`: the web chat page (see the package docstring), with a strict Content-Security-Policy."""

from __future__ import annotations

from aiohttp import web

from ..keys import STATIC_FILES
from ..web.routing import RouteTable

PAGE = "chat/index.html"
# No inline script or style, nothing from another origin: what the page shows from users is
# set as text (chat.js), and this policy stops anything that slipped through from running.
# `connect-src 'self'` covers the same-origin WebSocket (ws: or wss:) as well as fetch().
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The page's own URL never carries a secret, but image links are signed URLs.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

routes = RouteTable("chat page")


@routes.get("/", "The web chat page", auth=False, documented=False)
async def chat_page(request: web.Request) -> web.Response:
    return request.app[STATIC_FILES].respond(request, PAGE, PAGE_HEADERS)
