"""Helpers for console tests: an in-process console client that signs in through the form,
and (for browser tests) the `browser` and `site` fixtures of tests/browser/conftest.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from lucky_server.core import Core
from lucky_server.keys import CORE
from tests.browser import conftest as browser_fixtures
from tests.browser.conftest import site, site_template  # noqa: F401  (fixtures)

ADMIN = "boss"
ADMIN_PASSWORD = "console secret 1"
_HIDDEN = re.compile(r'name="(csrf|login_csrf)" value="([^"]*)"')


def hidden(html: str, name: str) -> str:
    """The value of the hidden field `name` (csrf, login_csrf) in a page."""
    for found, value in _HIDDEN.findall(html):
        if found == name:
            return value
    raise AssertionError(f"no hidden {name} field in: {html[:500]}")


class Console:
    """A browser-like client of the console over the in-process test server."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def core(self) -> Core:
        return self.client.server.app[CORE]

    async def get(self, path: str) -> tuple[int, str, dict[str, str]]:
        async with self.client.get(path, allow_redirects=False) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        async with self.client.post(path, data=data, allow_redirects=False) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def sign_in(self, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> tuple[int, str, dict[str, str]]:
        status, html, _ = await self.get("/console/login")
        assert status == 200, html
        return await self.post("/console/login", {"login_csrf": hidden(html, "login_csrf"), "next": "/console",
                                                  "username": username, "password": password})

    async def csrf(self, path: str = "/console") -> str:
        status, html, _ = await self.get(path)
        assert status == 200, html
        return hidden(html, "csrf")


@pytest.fixture
async def console(client: TestClient) -> Console:
    """A signed-out console client; the admin `boss` exists."""
    core = client.server.app[CORE]
    await core.auth.create_user(ADMIN, ADMIN_PASSWORD, is_admin=True)
    return Console(client)


@pytest.fixture
async def admin_console(console: Console) -> Console:
    status, body, headers = await console.sign_in()
    assert status == 303 and headers["Location"] == "/console", body
    return console


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module at a time: Playwright's sync API keeps an event loop running
    while it is open, which the async tests of this folder (pytest-asyncio) cannot share a
    thread with, so it is closed before the next module's tests run."""
    yield from browser_fixtures.browser.__wrapped__()  # type: ignore[attr-defined]


def page_text(page: Any) -> str:
    return str(page.inner_text("main"))
