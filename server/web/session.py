"""Who is calling: the bearer token, the client's address, and the user object's JSON shape."""

from __future__ import annotations

import functools
import ipaddress
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in trusted)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: web.Request) -> str:
    """The client's address: the peer's, or, when the peer is a proxy of `server.trusted_proxies`,
    the nearest address in X-Forwarded-For that is not one of them (read from the right, since a
    client can put anything on the left of what the proxies appended)."""
    peer = request.remote or "unknown"
    trusted = request.app[CORE].config.server.trusted_proxies
    if not trusted:
        return peer
    networks = _networks(tuple(trusted))
    if not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", ())).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: the proxy's own is all we know
    return hops[0] if hops else peer


def user_json(request: web.Request, user: UserRecord) -> dict[str, Any]:
    return user_object(user, request.app[CORE].config.public_url)
