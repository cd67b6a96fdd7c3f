"""Password hashing with scrypt (memory-hard), always off the event loop."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import os
import secrets

# 16 MiB and about 50 ms per hash on these machines: slow for an attacker, fine for a login.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _hash_sync(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def _encode(salt: bytes, digest: bytes, n: int, r: int, p: int) -> str:
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


class PasswordHasher:
    """Hashes and checks passwords on threads of its own, one per core.

    Each hash holds 16 MiB while it runs. On the shared default executor a burst of logins
    would run as many at once as it has threads (and keep their memory in the threads' malloc
    arenas) and queue up behind file work; here at most one hash per core runs, the rest wait.
    """

    def __init__(self, workers: int | None = None) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers or max(2, os.cpu_count() or 2), thread_name_prefix="scrypt")

    async def _scrypt(self, password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._pool, _hash_sync, password, salt, n, r, p)

    async def hash(self, password: str) -> str:
        salt = secrets.token_bytes(16)
        digest = await self._scrypt(password, salt, _N, _R, _P)
        return _encode(salt, digest, _N, _R, _P)

    async def verify(self, password: str, encoded: str | None) -> bool:
        """True if `password` matches; a missing hash (SMS-only account) never matches."""
        if not encoded:
            # Spend the same time as a real check so that unknown users cannot be told apart.
            await self._scrypt(password, b"0" * 16, _N, _R, _P)
            return False
        try:
            scheme, n, r, p, salt_b64, digest_b64 = encoded.split("$")
            if scheme != "scrypt":
                return False
            salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
            digest = await self._scrypt(password, salt, int(n), int(r), int(p))
        except (ValueError, TypeError):
            return False
        return hmac.compare_digest(digest, expected)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
