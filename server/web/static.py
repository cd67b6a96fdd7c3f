"""Files shipped with Lucky under `lucky_console.templates` (the checkout's `templates/`).

`GET /static/{path}` serves `templates/static/` (the chat page's and the console's scripts,
styles and pictures); `PackagedFiles.respond` also answers a whole page such as the chat
page's `chat/index.html`. They are read through importlib.resources, so an installed wheel
serves them exactly as a checkout does, never through a path relative to the repository.

Each file is read once (they are small) and kept with a strong ETag: a browser revalidates
(`Cache-Control: no-cache`) and gets a 304 until an upgrade changes the file. Only the types
the wheel ships (`*.js`, `*.css`, `*.svg`, `*.html`) are served, with `nosniff`; anything else,
a dot-file and a path that climbs out (`..`) are 404. These routes are public (`auth=False`)
and not part of the HTTP API (`documented=False`: not in /api/v1/openapi.json).
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from aiohttp import web

from ..errors import not_found
from ..keys import STATIC_FILES
from .routing import RouteTable

PACKAGE = "lucky_console.templates"
STATIC_FOLDER = "static"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class PackagedFiles:
    """The package's shipped files, each read on first use and then kept in memory."""

    def __init__(self, package: str = PACKAGE) -> None:
        self._package = package
        self._assets: dict[str, Asset | None] = {}

    def get(self, relative: str) -> Asset | None:
        """The file at `relative` (a `/`-separated path inside the package), or None."""
        if relative in self._assets:
            return self._assets[relative]
        asset = self._read(relative)
        self._assets[relative] = asset
        return asset

    def _read(self, relative: str) -> Asset | None:
        parts = relative.split("/")
        if any(not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        suffix = "." + parts[-1].rpartition(".")[2] if "." in parts[-1] else ""
        content_type = CONTENT_TYPES.get(suffix.lower())
        if content_type is None:
            return None
        node: Traversable = importlib.resources.files(self._package)
        for part in parts:
            node = node.joinpath(part)
        if not node.is_file():
            return None
        body = node.read_bytes()
        return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')

    def respond(self, request: web.Request, relative: str, headers: dict[str, str] | None = None) -> web.Response:
        """The file as a response (304 when the browser's copy is current); 404 if there is none."""
        asset = self.get(relative)
        if asset is None:
            raise not_found("No such file.")
        sent = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                **(headers or {})}
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=sent)
        response = web.Response(body=asset.body, headers=sent)
        response.headers["Content-Type"] = asset.content_type
        return response


routes = RouteTable("static")


@routes.get("/static/{path:.+}", "A script, style sheet or picture shipped with Lucky", auth=False,
            documented=False)
async def static_file(request: web.Request) -> web.Response:
    return request.app[STATIC_FILES].respond(request, f"{STATIC_FOLDER}/{request.match_info['path']}")
