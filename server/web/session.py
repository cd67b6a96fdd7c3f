"""Who is calling: the bearer token, the client's address, and the user object's JSON shape."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth.tokens import AccessClaims
from ..keys import CORE
from ..storage.stores.users import UserRecord
from ..users.service import user_object

_CLAIMS_KEY: web.RequestKey[AccessClaims] = web.RequestKey("claims", AccessClaims)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def claims_of(request: web.Request, *, query_token: bool = False) -> AccessClaims:
    """The caller's verified claims; 401 unless a live access token was sent.

    The middleware calls it before every handler whose `RouteSpec` has `auth=True` (handlers
    of those routes read the result with `caller`); a route with `auth=False` that also takes
    an optional token (a file's content: a signed URL or a bearer token) calls it itself.
    With `query_token` a `?token=` is accepted when no header is sent (the WebSocket).
    """
    if _CLAIMS_KEY in request:
        return request[_CLAIMS_KEY]
    token = bearer_token(request)
    if token is None and query_token:
        token = request.query.get("token") or None
    claims = await request.app[CORE].auth.authenticate(token)
    request[_CLAIMS_KEY] = claims
    return claims


def caller(request: web.Request) -> AccessClaims:
    """The claims the middleware verified for this request (routes with `auth=True` only)."""
    if _CLAIMS_KEY not in request:  # a bug in the route's declaration, not the client's mistake
        raise RuntimeError(f"caller() on {request.method} {request.path}, a route not declared with auth=True")
    return request[_CLAIMS_KEY]


def client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


def user_json(request: web.Request, user: UserRecord) -> dict[str, Any]:
    return user_object(user, request.app[CORE].config.public_url)
