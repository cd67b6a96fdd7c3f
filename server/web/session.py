"""Who is calling: the bearer token, the client's address, and the user object's JSON shape."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth.tokens import AccessClaims
from ..keys import CORE
from ..storage.stores.users import UserRecord

_CLAIMS_KEY: web.RequestKey[AccessClaims] = web.RequestKey("claims", AccessClaims)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def claims_of(request: web.Request) -> AccessClaims:
    """The caller's verified claims; 401 unless a live access token was sent."""
    if _CLAIMS_KEY in request:
        return request[_CLAIMS_KEY]
    claims = await request.app[CORE].auth.authenticate(bearer_token(request))
    request[_CLAIMS_KEY] = claims
    return claims


def client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


def user_json(request: web.Request, user: UserRecord) -> dict[str, Any]:
    base = request.app[CORE].config.public_url
    return {
        "id": str(user.id),
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": f"{base}/api/v1/files/{user.avatar_file_id}/content" if user.avatar_file_id else None,
        "created_at": user.created_at,
    }
