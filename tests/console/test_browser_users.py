"""The console in a real Chromium against a real `lucky serve`: users, groups, audit, CSRF,
XSS and session expiry, with a screenshot of each page."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser.conftest import screenshot
from tests.cli.process import Served, clean_env

from .test_browser_login import sign_in


class WatchedSocket:
    """A real WebSocket client of the served site, in a thread of its own (Playwright's sync
    API owns this thread's event loop): the frames it got and how it was closed."""

    def __init__(self, url: str, token: str) -> None:
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.welcomed = threading.Event()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(url, token)), daemon=True)
        self._thread.start()
        assert self.welcomed.wait(10), "no welcome frame"

    async def _run(self, url: str, token: str) -> None:
        try:
            async with aiohttp.ClientSession() as http, \
                    http.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    frame = message.json()
                    self.frames.append(frame)
                    if frame.get("type") == "welcome":
                        self.welcomed.set()
                self.close_code = ws.close_code
        finally:
            self.closed.set()


def _register(site: Served, username: str, password: str, display_name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    status, answer = site.call("POST", "/api/v1/auth/register", body)
    assert status == 201, answer
    return dict(answer)


def test_disable_kicks_the_socket_enable_and_reset_password(browser: Any, site: Served) -> None:
    bob = _register(site, "bob", "bob secret 1")
    socket = WatchedSocket(site.ws_url, bob["access_token"])
    page = sign_in(browser, site)
    page.wait_for_url(site.url + "/console")

    page.click("header nav >> text=Users")
    page.fill("input[name=q]", "bo")
    page.click("button:has-text('Search')")
    assert page.locator("table a", has_text="bob").count() == 1
    screenshot(page, "console-users")
    page.click("table a:has-text('bob')")
    assert page.locator("h1").inner_text() == "bob"

    page.click("button:has-text('Disable')")
    assert "bob is disabled" in page.locator(".flash").inner_text()
    assert socket.closed.wait(10), "the disabled user's socket stayed open"
    assert {"type": "kick", "reason": "disabled"} in socket.frames and socket.close_code == 4001
    assert site.login("bob", "bob secret 1")[0] == 403

    page.click("button:has-text('Enable')")
    assert "bob is enabled" in page.locator(".flash").inner_text()
    assert site.login("bob", "bob secret 1")[0] == 200

    page.click("button:has-text('Reset password')")  # empty field: a generated one, shown once
    generated = page.locator("#new-password").inner_text()
    screenshot(page, "console-user")
    assert site.login("bob", "bob secret 1")[0] == 401
    status, body = site.login("bob", generated)
    assert status == 200, body

    page.click("header nav >> text=Audit log")
    rows = page.locator("table.audit tbody tr")
    actions = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(4)]
    assert actions == ["user.passwd", "user.enable", "user.disable", "console.login"]
    assert rows.nth(0).locator("td").nth(1).inner_text() == "root"
    screenshot(page, "console-audit")
    page.context.close()


def test_a_script_display_name_is_text_and_no_dialog_fires(browser: Any, site: Served) -> None:
    mallory = _register(site, "mallory", "mallory secret 1", "<script>alert(1)</script>")
    dialogs: list[str] = []
    page = sign_in(browser, site)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.wait_for_url(site.url + "/console")
    page.goto(site.url + "/console/users?q=mal")
    assert page.locator("table tbody td").nth(1).inner_text() == "<script>alert(1)</script>"
    page.goto(f"{site.url}/console/users/{mallory['user']['id']}")
    assert page.locator(".display-name").inner_text() == "<script>alert(1)</script>"
    page.wait_for_load_state("load")
    assert dialogs == []
    page.context.close()


def test_groups_pages_and_dismiss(browser: Any, site: Served) -> None:
    owner = _register(site, "olga", "olga secret 1")
    friend = _register(site, "fred", "fred secret 1")
    status, group = site.call("POST", "/api/v1/groups", {"name": "Book club", "member_ids": [friend["user"]["id"]]},
                              token=owner["access_token"])
    assert status == 201, group
    page = sign_in(browser, site)
    page.wait_for_url(site.url + "/console")
    page.click("header nav >> text=Groups")
    page.fill("input[name=q]", "Book")
    page.click("button:has-text('Search')")
    screenshot(page, "console-groups")
    page.click("table a:has-text('Book club')")
    assert page.locator("table tbody tr").count() == 2  # olga and fred
    screenshot(page, "console-group")
    page.click("button:has-text('Dismiss this group')")
    assert "is dismissed" in page.locator(".flash").inner_text()
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(browser: Any, site: Served) -> None:
    carol = _register(site, "carol", "carol secret 1")
    page = sign_in(browser, site)
    page.wait_for_url(site.url + "/console")
    # The browser's own cookies, a form built without the token: refused.
    answer = page.request.post(f"{site.url}/console/users/{carol['user']['id']}/disable", form={"x": "1"})
    assert answer.status == 403 and "security token" in answer.text()
    answer = page.request.post(f"{site.url}/console/users/{carol['user']['id']}/disable", form={"csrf": "forged"})
    assert answer.status == 403
    assert site.login("carol", "carol secret 1")[0] == 200  # still enabled
    page.goto(f"{site.url}/console/audit?action=user.disable")
    assert "No entry matches." in page.locator("main").inner_text()
    page.context.close()


@pytest.fixture
def short_idle_site(site_template: Path, tmp_path: Path) -> Iterator[Served]:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(site_template, data)
    server = Served("--data-dir", data, env=clean_env(LUCKY_CONSOLE__IDLE_TIMEOUT_S="2"))
    try:
        server.wait_listening()
        yield server
    finally:
        server.kill()


def test_an_idle_session_expires(browser: Any, short_idle_site: Served) -> None:
    page = sign_in(browser, short_idle_site)
    page.wait_for_url(short_idle_site.url + "/console")
    page.goto(short_idle_site.url + "/console/users")
    assert page.locator("h1").inner_text() == "Users"
    time.sleep(3)  # past the 2-second idle timeout, with no request in between
    page.goto(short_idle_site.url + "/console/users")
    assert page.url.startswith(short_idle_site.url + "/console/login")
    assert page.locator("h1").inner_text() == "Sign in"
    page.context.close()
