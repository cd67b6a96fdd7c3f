"""Password hashing with scrypt (memory-hard), always off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

# 16 MiB and about 50 ms per hash on these machines: slow for an attacker, fine for a login.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _hash_sync(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def _encode(salt: bytes, digest: bytes, n: int, r: int, p: int) -> str:
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


async def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_hash_sync, password, salt, _N, _R, _P)
    return _encode(salt, digest, _N, _R, _P)


async def verify_password(password: str, encoded: str | None) -> bool:
    """True if `password` matches; a missing hash (SMS-only account) never matches."""
    if not encoded:
        # Spend the same time as a real check so that unknown users cannot be told apart.
        await asyncio.to_thread(_hash_sync, password, b"0" * 16, _N, _R, _P)
        return False
    try:
        scheme, n, r, p, salt_b64, digest_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = await asyncio.to_thread(_hash_sync, password, salt, int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)
