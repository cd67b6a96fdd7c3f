"""The browser fixtures of tests/browser (a session Chromium, a real `lucky serve` per test),
and a `Visitor`: one browser context on the chat page, watched for script errors, refused
Content-Security-Policy loads and dialogs, so that every test also checks those stayed none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import browser, site, site_template  # noqa: F401  (fixtures)
from tests.cli.process import Served

PASSWORD = "correct horse 1"


@dataclass
class Visitor:
    page: Any
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def sign_up(self, username: str, display_name: str = "") -> None:
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        if display_name:
            self.page.fill("#display-name", display_name)
        self.page.click("#signup-button")
        self.wait_online()

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#login-button")

    def wait_online(self) -> None:
        expect(self.page.locator("#app")).to_be_visible()
        expect(self.page.locator("#connection")).to_have_text("online")

    def chat_with(self, username: str) -> None:
        self.page.fill("#find-input", username)
        self.page.click("#find-form button")
        self.page.locator("#find-results button", has_text=f"@{username}").click()
        expect(self.page.locator("#conversation")).to_be_visible()

    def conversation(self, name: str) -> Any:
        """The conversation list's entry whose name is `name`."""
        return self.page.locator("#conversations li").filter(
            has=self.page.locator(".name", has_text=name))

    def open(self, name: str) -> None:
        self.conversation(name).locator("button").click()
        expect(self.page.locator("#title-name")).to_have_text(name)

    def send(self, text: str) -> None:
        self.page.fill("#text-input", text)
        self.page.press("#text-input", "Enter")

    def message(self, text: str, *, mine: bool) -> Any:
        side = "mine" if mine else "theirs"
        return self.page.locator(f"#messages li.msg.{side}").filter(
            has=self.page.locator(".text", has_text=text))

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems
        assert self.dialogs == [], self.dialogs


@pytest.fixture
def chat_site(site: Served) -> Served:  # noqa: F811  (the imported fixture)
    """The server the chat page is visited on (a test module may override it)."""
    return site


@pytest.fixture
def visit(browser: Any, chat_site: Served) -> Iterator[Any]:  # noqa: F811  (the imported fixture)
    """`visit()`: a new browser context (its own sessionStorage) on the chat page."""
    contexts: list[Any] = []
    visitors: list[Visitor] = []

    def open_page() -> Visitor:
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        contexts.append(context)
        page = context.new_page()
        visitor = Visitor(page)
        page.on("pageerror", lambda error: visitor.problems.append(f"script error: {error}"))
        page.on("console", lambda msg: visitor.problems.append(f"console: {msg.text}")
                if msg.type == "error" and "Content Security Policy" in msg.text else None)

        def on_dialog(dialog: Any) -> None:
            visitor.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(chat_site.url + "/")
        visitors.append(visitor)
        return visitor

    try:
        yield open_page
        for visitor in visitors:
            visitor.assert_clean()
    finally:
        for context in contexts:
            context.close()
