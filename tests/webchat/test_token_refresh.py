"""The chat page keeps its session past the access token's life: it refreshes the token set
before it expires and hands the new token to the open socket (`auth`), so the socket stays
up and the chat goes on (PROTOCOL.md, "Limits on every input": token lifetime)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.cli.process import Served, clean_env

ACCESS_TTL_S = 10  # the page refreshes at 80% of it: about every 8 seconds


@pytest.fixture
def chat_site(site_template: Path, tmp_path: Path) -> Iterator[Served]:
    data = tmp_path / "data"
    shutil.copytree(site_template, data)
    server = Served("--data-dir", data, env=clean_env(LUCKY_AUTH__ACCESS_TTL_S=str(ACCESS_TTL_S)))
    try:
        server.wait_listening()
        yield server
    finally:
        server.kill()


def test_the_page_refreshes_its_token_and_keeps_its_socket(visit: Any) -> None:
    alice, bob = visit(), visit()
    sockets: list[Any] = []
    alice.page.on("websocket", lambda socket: sockets.append(socket))
    alice.sign_up("alice")
    bob.sign_up("bob")
    alice.chat_with("bob")
    alice.send("before")
    bob.open("alice")
    expect(bob.message("before", mine=False)).to_be_visible()

    # Two refreshes: the access token the socket was opened with has expired by the second.
    for _ in range(2):
        with alice.page.expect_response(lambda r: r.url.endswith("/api/v1/auth/refresh"),
                                        timeout=ACCESS_TTL_S * 3 * 1000) as refreshed:
            pass
        assert refreshed.value.status == 200
    bob.send("after two refreshes")
    expect(alice.message("after two refreshes", mine=False)).to_be_visible()
    alice.send("still here")
    expect(bob.message("still here", mine=False)).to_be_visible()
    expect(alice.page.locator("#connection")).to_have_text("online")
    assert len(sockets) == 1, "the socket was reopened instead of kept"
    # And HTTP calls use the fresh token too.
    alice.chat_with("bob")
    expect(alice.message("still here", mine=True)).to_be_visible()
