"""Shared fixtures: an instance on each database, a running app, and clients that sign in.

`backend` runs a test on SQLite and on PostgreSQL; use `instance` for a data dir with
secrets and a config, `client` for a real aiohttp server and client around `build_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from lucky_server.app import build_app
from lucky_server.auth.keyring import generate_secrets
from lucky_server.clock import FakeClock
from lucky_server.config import Config, load_config
from lucky_server.core import Core
from lucky_server.keys import CORE

from .services import drop_schema, postgres_url_with_fresh_schema

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on the test's backend."""
    if backend == "sqlite":
        yield f"sqlite://{tmp_path / 'lucky.db'}"
        return
    url, schema = postgres_url_with_fresh_schema()
    try:
        yield url
    finally:
        drop_schema(schema)


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, database_url: str) -> MakeConfig:
    """A Config for a data dir with secrets; keyword `section={key: value}` overrides."""
    data_dir = tmp_path / "data"
    generate_secrets(data_dir / "secrets")

    def make(**sections: dict[str, Any]) -> Config:
        values: dict[str, dict[str, Any]] = {"database": {"url": database_url}}
        for name, entries in sections.items():
            values.setdefault(name, {}).update(entries)
        return load_config(data_dir, environ={}, overrides=values)

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Api:
    """A signed-out or signed-in view of a test client, with the contract's helpers."""

    def __init__(self, client: TestClient, token: str | None = None, user: dict[str, Any] | None = None) -> None:
        self.client = client
        self.token = token
        self.user = user or {}

    @property
    def core(self) -> Core:
        return self.client.server.app[CORE]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, json: Any = None, *, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        merged = {**self.headers(), **(headers or {})}
        async with self.client.request(method, path, json=json, data=data, headers=merged) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def register(self, username: str, password: str = "correct horse", **extra: Any) -> "Api":
        status, body = await self.call("POST", "/api/v1/auth/register",
                                       {"username": username, "password": password, **extra})
        assert status == 201, body
        return Api(self.client, body["access_token"], body["user"])


@pytest.fixture
async def client(make_config: MakeConfig, clock: FakeClock, aiohttp_client: Any) -> AsyncIterator[TestClient]:
    # make_config (and so the database) comes first: fixtures are torn down in reverse, so
    # the app, which flushes its writes on close, must close before the database is dropped.
    app = build_app(make_config(), clock=clock)
    yield await aiohttp_client(app)


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)
