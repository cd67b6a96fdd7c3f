"""The middleware's auth check: a route's `RouteSpec.auth` alone decides whether a token is needed.

Issue 9: 42 handlers each asked for the caller's claims by hand, so a 401 depended on every
handler remembering. Now `auth_middleware` authenticates before the handler of every route
whose spec says `auth=True`; these tests walk every route the running server really has.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from lucky_server.app import ROUTE_TABLES
from lucky_server.web.routing import RouteSpec, spec_of

from ..conftest import Api
from .conftest import assert_error

# The routes anyone may call. Adding a public route is a decision: add it here too.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/auth/public-key"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/sms/code"),  # the phone's code is what signs in
    ("POST", "/api/v1/auth/sms/login"),
    ("POST", "/api/v1/auth/qr"),  # a browser starting a QR sign-in
    ("GET", "/api/v1/auth/qr/{qr_id}"),  # its poll_token, not a bearer token
    ("GET", "/api/v1/auth/qr/{qr_id}.png"),  # shows only the payload
    ("GET", "/api/v1/files/{file_id}/content"),  # a signed URL, or a bearer token
    ("GET", "/api/v1/files/{file_id}/thumbnail"),
    ("GET", "/"),  # the web chat page and its static files
    ("GET", "/static/{path:.+}"),
    ("GET", "/s/{code}"),  # short links are followed by anyone
    ("GET", "/api/v1/releases/check"),  # update checks come from apps before any sign-in
    ("GET", "/api/v1/releases/tauri/{target}/{arch}/{current_version}"),
    ("GET", "/api/v1/releases/{release_id}/download"),  # a signed URL
}
_PARAM = re.compile(r"\{[^}]+\}")


def _routes(api: Api) -> list[tuple[RouteSpec, str]]:
    """Every route of the running server with its spec, and a concrete path to call."""
    found: list[tuple[RouteSpec, str]] = []
    for route in api.client.server.app.router.routes():
        spec = spec_of(route.handler)
        assert spec is not None, f"{route.method} {route.resource}: a route without a RouteSpec"
        found.append((spec, _PARAM.sub("1", spec.path)))
    return found


async def test_every_route_that_needs_a_token_answers_401_without_one(api: Api, backend: str) -> None:
    routes = _routes(api)
    private = [(spec, path) for spec, path in routes if spec.auth]
    assert len(private) >= 40  # the whole API, not an empty walk
    for spec, path in private:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
            answer = await api.call(spec.method, path, headers=headers)
            error = assert_error(answer, 401, "unauthorized")
            assert error["message"], (spec.method, path)


async def test_the_websocket_takes_its_token_from_the_query_and_checks_it_first(api: Api, backend: str) -> None:
    assert_error(await api.call("GET", "/ws?token=not-a-token"), 401, "unauthorized")
    alice = await api.register("alice")
    async with api.client.ws_connect(f"/ws?token={alice.token}") as ws:
        welcome = await ws.receive_json()
        assert welcome["type"] == "welcome" and welcome["user_id"] == alice.user["id"]
    # only the WebSocket takes ?token=: elsewhere a token goes in the header
    assert_error(await api.call("GET", f"/api/v1/me?token={alice.token}"), 401, "unauthorized")


async def test_public_routes_answer_without_a_token(api: Api, backend: str) -> None:
    routes = _routes(api)
    # The console's pages check their own session cookie, never a token (tests/console), and
    # are not part of the API document.
    console = [spec for spec, _ in routes if spec.path == "/console" or spec.path.startswith("/console/")]
    assert console and all(not spec.auth and not spec.documented for spec in console)
    public = {(spec.method, spec.path) for spec, _ in routes if not spec.auth and spec not in console}
    assert public == PUBLIC
    for spec, path in routes:
        if spec.auth:
            continue
        # files: a (bad) signed URL, so the signature decides, not a missing token
        query = "?exp=1&sig=bad" if path.startswith("/api/v1/files/") else ""
        status, body = await api.call(spec.method, path + query)
        assert status != 401 and status < 500, (spec.method, path, status, body)


async def test_a_valid_token_reaches_every_handler(api: Api, backend: str) -> None:
    # The handlers read the claims the middleware verified: none asks again, none fails on it.
    alice = await api.register("alice")
    for spec, path in _routes(api):
        if not spec.auth or spec.path == "/api/v1/auth/logout" or spec.query_token:
            continue  # logout would end the session; the WebSocket is tested above
        status, body = await alice.call(spec.method, path)
        assert status != 401 and status < 500, (spec.method, path, status, body)


def _handlers() -> list[tuple[RouteSpec, Any]]:
    return [(spec, handler) for table in ROUTE_TABLES for spec, handler in table.specs]


@pytest.mark.parametrize(("spec", "handler"), _handlers(), ids=lambda v: f"{v.method} {v.path}"
                         if isinstance(v, RouteSpec) else "")
def test_handlers_read_the_caller_and_never_authenticate_by_hand(spec: RouteSpec, handler: Any) -> None:
    source = inspect.getsource(handler)
    assert "authenticate(" not in source
    if spec.auth:
        assert "claims_of(" not in source, "the middleware authenticated already: use caller(request)"
    else:
        assert "caller(" not in source, "a public route has no verified caller"

