"""Fixtures for the short-link tests: signed-in users (one an admin) on a real server, on both
databases, and a server built with other `[links]` settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from lucky_server.app import build_app
from lucky_server.clock import FakeClock

from ..conftest import Api, MakeConfig

# The CLI tests' initialized instance (SQLite, local files, admin `root`), for `lucky link`.
from ..cli.conftest import data_dir, initialized_template  # noqa: F401 - fixtures


@pytest.fixture
async def alice(api: Api) -> Api:
    return await api.register("alice")


@pytest.fixture
async def bob(api: Api) -> Api:
    return await api.register("bob")


@pytest.fixture
async def root(api: Api) -> Api:
    """A signed-in admin."""
    admin = await api.register("root")
    await api.core.auth.set_admin(int(admin.user["id"]), True)
    return admin


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
def make_api(make_config: MakeConfig, clock: FakeClock, aiohttp_client: Any) -> MakeApi:
    """`await make_api(links={...})`: another server on the test's database, with these settings."""

    async def make(**sections: dict[str, Any]) -> Api:
        client: TestClient = await aiohttp_client(build_app(make_config(**sections), clock=clock))
        return Api(client)

    return make


async def follow(api: Api, code: str, accept: str = "text/html") -> tuple[int, str, str]:
    """GET /s/{code} without following the redirect: status, Location, body."""
    async with api.client.get(f"/s/{code}", allow_redirects=False, headers={"Accept": accept}) as resp:
        return resp.status, resp.headers.get("Location", ""), await resp.text()


async def create(api: Api, url: str, **extra: Any) -> tuple[int, Any]:
    return await api.call("POST", "/api/v1/links", {"url": url, **extra})


async def signed_in_again(user: Api, password: str = "correct horse") -> Api:
    """A new session of `user` (after the fake clock passed its access token's lifetime)."""
    status, body = await user.call("POST", "/api/v1/auth/login", {"username": user.user["username"],
                                                                   "password": password})
    assert status == 200, body
    return Api(user.client, body["access_token"], body["user"])
