"""A route table whose entries carry what the OpenAPI document needs.

Feature packages declare routes with `RouteTable`; `build_app` adds them to the router. Each
handler keeps its `RouteSpec`, so `/api/v1/openapi.json` is generated from the routes that
really exist and cannot drift from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    summary: str
    tag: str
    auth: bool = True  # the middleware answers 401 before the handler runs without a live token
    # Only for an admin account: the middleware also answers 403 to a signed-in user who is not
    # one (looked up on each request, so a demotion takes effect at once). Implies `auth`.
    admin: bool = False
    # The token may also come as `?token=`: only the WebSocket upgrade, since browsers cannot
    # set headers on it (PROTOCOL.md, "WebSocket").
    query_token: bool = False
    body: type | None = None
    query: dict[str, str] = field(default_factory=dict)  # name -> description
    responses: dict[int, str] = field(default_factory=dict)
    response_model: type | None = None
    content_type: str = "application/json"
    # False for what is not the HTTP API (the chat page, static files): served like any route,
    # but left out of /api/v1/openapi.json (and so of tests/fuzz).
    documented: bool = True


SPEC_ATTR = "__lucky_route__"


class RouteTable:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.specs: list[tuple[RouteSpec, Handler]] = []

    def route(self, method: str, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            spec = RouteSpec(method, path, summary, self.tag, **kwargs)
            setattr(handler, SPEC_ATTR, spec)
            self.specs.append((spec, handler))
            return handler

        return decorate

    def get(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **kwargs)

    def post(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **kwargs)

    def patch(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, summary, **kwargs)

    def put(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, summary, **kwargs)

    def delete(self, path: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **kwargs)

    def add_to(self, app: web.Application) -> None:
        for spec, handler in self.specs:
            app.router.add_route(spec.method, spec.path, handler)


def spec_of(handler: Any) -> RouteSpec | None:
    spec = getattr(handler, SPEC_ATTR, None)
    return spec if isinstance(spec, RouteSpec) else None
