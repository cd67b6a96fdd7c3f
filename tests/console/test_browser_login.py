"""Signing in to the console in a real Chromium against a real `lucky serve`."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, screenshot
from tests.cli.process import Served


def sign_in(browser: Any, site: Served, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> Any:
    """A new browser context's page, on the console after submitting the sign-in form."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.url + "/console")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return page


def test_admin_signs_in_sees_the_dashboard_and_signs_out(browser: Any, site: Served) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.url + "/console")
    assert page.url.startswith(site.url + "/console/login")
    screenshot(page, "console-login")
    page.fill("input[name=username]", ADMIN_USERNAME)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/console")
    assert page.locator("h1").inner_text() == "Dashboard"
    nav = page.locator("header nav").inner_text()
    for label in ("Dashboard", "Users", "Groups", "Releases", "Short links", "Outbox", "Jobs", "Backups", "Audit log"):
        assert label in nav
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["lucky_console"]["httpOnly"] and cookies["lucky_console"]["sameSite"] == "Strict"
    assert cookies["lucky_console"]["path"] == "/console"
    screenshot(page, "console-dashboard")
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(site.url + "/console/login")
    page.goto(site.url + "/console")
    assert page.url.startswith(site.url + "/console/login")
    context.close()


def test_a_non_admin_cannot_sign_in(browser: Any, site: Served) -> None:
    status, body = site.call("POST", "/api/v1/auth/register", {"username": "alice", "password": "alice secret 1"})
    assert status == 201, body
    page = sign_in(browser, site, "alice", "alice secret 1")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."
    assert page.url.startswith(site.url + "/console/login")
    page.goto(site.url + "/console")
    assert page.url.startswith(site.url + "/console/login")
    page.context.close()
