"""Access tokens (JWT, HS256) and refresh tokens (opaque, stored only as a hash)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import jwt

_ALGORITHM = "HS256"
_ISSUER = "lucky"


@dataclass(frozen=True, slots=True)  # slotted: every socket keeps its own (docs/benchmarks.md, W3)
class AccessClaims:
    user_id: int
    family_id: int
    device_id: str
    jti: str
    expires_at_s: int


class TokenInvalid(Exception):
    """The token is malformed, forged or expired."""


class TokenCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, user_id: int, family_id: int, device_id: str, now_s: int, ttl_s: int) -> str:
        payload = {
            "iss": _ISSUER,
            "sub": str(user_id),
            "fam": str(family_id),
            "dev": device_id,
            "jti": secrets.token_hex(12),
            "iat": now_s,
            "exp": now_s + ttl_s,
        }
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM)

    def decode(self, token: str, now_s: int) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"require": ["sub", "exp", "jti", "fam"], "verify_exp": False, "verify_iat": False,
                         "verify_nbf": False},
            )
            exp = int(payload["exp"])
            if exp <= now_s:  # checked against the injected clock, not the wall clock
                raise TokenInvalid("the access token has expired: refresh it")
            return AccessClaims(
                user_id=int(payload["sub"]),
                family_id=int(payload["fam"]),
                device_id=str(payload.get("dev", "")),
                jti=str(payload["jti"]),
                expires_at_s=exp,
            )
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
            raise TokenInvalid("the access token is not valid: sign in again") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
