"""Fixtures for the backup tests: a source instance (the chat tests' server, on the test's
database and, where asked, S3 storage), archives taken from it while it runs, and restored
instances on SQLite or PostgreSQL, served by a real aiohttp server.
"""

from __future__ import annotations

import asyncio
import hashlib
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from lucky_server.app import build_app
from lucky_server.backup.places import FolderPlace
from lucky_server.backup.take import BackupResult, take_backup
from lucky_server.clock import Clock
from lucky_server.config import load_config
from lucky_server.core import Core
from lucky_server.keys import CORE
from lucky_server.storage import Database, open_database

from ..chat.conftest import PASSWORD, Chat, User, chat, make_chat  # noqa: F401 - fixtures used here
from ..conftest import Api
from ..files.conftest import s3_endpoint, storage, storage_url  # noqa: F401 - fixtures: both blob stores
from ..services import drop_schema, postgres_url_with_fresh_schema

TARGETS = ["sqlite", "postgres"]


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    """The engine a backup is restored onto."""
    return str(request.param)


@pytest.fixture
def target_url(target: str) -> Iterator[str | None]:
    """`--database` for the restore: none for SQLite (the new data dir's lucky.db), a fresh
    PostgreSQL schema otherwise (dropped afterwards)."""
    if target == "sqlite":
        yield None
        return
    url, schema = postgres_url_with_fresh_schema()
    try:
        yield url
    finally:
        drop_schema(schema)


def core_of(chat: Chat) -> Core:
    return chat.client.server.app[CORE]


async def backup_of(chat: Chat, folder: Path, **options: Any) -> BackupResult:
    """An archive of the running server's instance, taken in-process as the scheduled job does."""
    core = core_of(chat)
    return await take_backup(core.config, core.db, core.files.blobs, FolderPlace(folder), clock=Clock(), **options)


async def send_text(user: User, to: User, text: str, cmid: str) -> dict[str, Any]:
    """A text message through the chat service (HTTP send); the stored message."""
    low, high = sorted((int(user.id), int(to.id)))
    status, body = await user.api.call("POST", f"/api/v1/conversations/p:{low}:{high}/messages",
                                       {"client_msg_id": cmid, "kind": "text", "body": {"text": text}})
    assert status == 201, body
    return dict(body)


async def upload(user: User, data: bytes, name: str = "notes.bin") -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    status, body = await user.api.call("POST", "/api/v1/files", data=form)
    assert status == 201, body
    return dict(body)


Served = Callable[[Path], Awaitable[Api]]


@pytest.fixture
async def serve_restored(target_url: str | None, aiohttp_client: Any) -> Served:
    """Serve a restored data dir (its own lucky.toml); an anonymous Api on it.

    `target_url` comes first so that the server closes before its schema is dropped.
    """

    async def serve(data_dir: Path) -> Api:
        config = load_config(data_dir, environ={})
        return Api(await aiohttp_client(build_app(config, apply_migrations=False)))

    return serve


async def sign_in(api: Api, username: str, password: str = PASSWORD) -> Api:
    status, body = await api.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
    assert status == 200, body
    return Api(api.client, body["access_token"], body["user"])


def archived_rows(archive: Path) -> tuple[dict[str, Any], dict[str, list[list[Any]]]]:
    """An unencrypted archive's manifest and every table's rows, read with nothing but tarfile."""
    rows: dict[str, list[list[Any]]] = {}
    manifest: dict[str, Any] = {}
    with tarfile.open(archive) as tar:
        for info in tar:
            handle = tar.extractfile(info)
            assert handle is not None
            data = handle.read()
            if info.name == "manifest.json":
                manifest = orjson.loads(data)
            elif info.name.startswith("tables/"):
                rows.setdefault(info.name.split("/")[1], []).extend(orjson.loads(line) for line in data.splitlines())
    return manifest, rows


async def database_rows(db: Database, table: str, columns: list[str], kinds: list[str]) -> list[list[Any]]:
    """A table's rows as lists in `columns` order, booleans as booleans (whatever the engine)."""
    found = await db.fetch_all(f"SELECT {', '.join(columns)} FROM {table}")
    return [[bool(r[c]) if k == "boolean" and r[c] is not None else r[c] for c, k in zip(columns, kinds)]
            for r in found]


async def open_restored_database(data_dir: Path) -> Database:
    db = open_database(load_config(data_dir, environ={}).database_url)
    await db.open()
    return db


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")
