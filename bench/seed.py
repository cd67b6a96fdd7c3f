"""Creating many accounts fast for W3, before the server starts, through Lucky's own stores.

Registering 10,000 users over HTTP would spend 10,000 scrypt hashes (~50 ms each) of server
CPU before the measurement even starts. Instead the accounts are inserted with
`UserStore.create` (the same row registration writes), all sharing one password hash
computed once with tiny scrypt parameters: the login path verifies with the parameters stored
in the hash, so each later `POST /api/v1/auth/login` is cheap, yet it is still a real login
that opens a real session (device, refresh family) and returns its own access token. Each
idle socket then authenticates with its own token, exactly as a client would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from pathlib import Path

from lucky_server.config import load_config
from lucky_server.core import open_core
from lucky_server.storage.stores.users import UserRecord, UserStore


def cheap_hash(password: str) -> str:
    """A valid `scrypt$n$r$p$salt$digest` hash, with parameters ~10,000 times cheaper than Lucky's."""
    n, r, p = 16, 1, 1
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


async def seed_users(data_dir: Path, usernames: list[str], password: str, concurrency: int = 256) -> None:
    config = load_config(data_dir, environ={})
    password_hash = cheap_hash(password)
    async with open_core(config) as core:
        store = UserStore(core.db)
        now = core.clock.now_ms()
        gate = asyncio.Semaphore(concurrency)  # concurrent inserts share commits (group commit)

        async def one(name: str) -> None:
            async with gate:
                await store.create(UserRecord(id=core.ids.next_id(), username=name, display_name=name,
                                              password_hash=password_hash, avatar_file_id=None,
                                              is_admin=False, disabled=False, created_at=now, updated_at=now))

        await asyncio.gather(*(one(n) for n in usernames))
