"""The web chat page at `/`, in a real Chromium against a real `lucky serve`: two people sign
up in two browser contexts and chat live, with unread counts, read receipts, an image, a
group, a hostile display name and a reload. A screenshot of each state is kept."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.cli.process import Served, lucky

from .conftest import PASSWORD


def test_the_page_is_served_with_a_strict_policy_and_not_as_api(site: Served) -> None:
    import urllib.request

    with urllib.request.urlopen(site.url + "/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["Content-Type"].startswith("text/html")
        assert b'<script src="/static/chat/chat.js"' in response.read()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    with urllib.request.urlopen(site.url + "/static/chat/chat.js", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    status, body = site.call("GET", "/static/chat/missing.js")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = site.call("GET", "/static/chat/../../__init__.py")
    assert status == 404
    status, openapi = site.call("GET", "/api/v1/openapi.json")
    assert status == 200
    assert "/" not in openapi["paths"] and not any(p.startswith("/static") for p in openapi["paths"])


def test_two_people_chat_live_with_unread_counts_and_read_receipts(visit: Any) -> None:
    alice, bob = visit(), visit()
    screenshot(alice.page, "chat-01-sign-in")
    alice.sign_up("alice", "Alice A.")
    bob.sign_up("bob", "Bob B.")

    alice.chat_with("bob")
    expect(alice.page.locator("#title-name")).to_have_text("Bob B.")
    alice.send("hello bob")
    expect(alice.message("hello bob", mine=True).locator(".receipt")).to_have_text("Sent")

    # Bob has not opened it: the conversation shows up live, with one unread.
    entry = bob.conversation("Alice A.")
    expect(entry.locator(".badge")).to_have_text("1")
    alice.send("are you there?")
    expect(entry.locator(".badge")).to_have_text("2")
    expect(entry.locator(".preview")).to_have_text("are you there?")
    screenshot(bob.page, "chat-02-unread")

    bob.open("Alice A.")
    expect(bob.message("hello bob", mine=False)).to_be_visible()
    expect(bob.message("are you there?", mine=False)).to_be_visible()
    expect(entry.locator(".badge")).to_have_count(0)

    # Alice's messages now say Bob read them.
    expect(alice.message("are you there?", mine=True).locator(".receipt")).to_have_text("Read")
    expect(alice.message("hello bob", mine=True).locator(".receipt")).to_have_text("Read")
    screenshot(alice.page, "chat-03-read-receipt")

    bob.send("hi alice 👋")
    expect(alice.message("hi alice 👋", mine=False)).to_be_visible()
    expect(alice.conversation("Bob B.").locator(".badge")).to_have_count(0)  # open: read at once
    screenshot(bob.page, "chat-04-conversation")

    # The server agrees: nothing is unread for either of them.
    for who in (alice, bob):
        unread = who.page.evaluate("""async () => {
            const saved = JSON.parse(sessionStorage.getItem('lucky.chat.v1'));
            const r = await fetch('/api/v1/conversations', {headers: {Authorization: 'Bearer ' + saved.tokens.access_token}});
            return (await r.json()).items.map((c) => c.unread);
        }""")
        assert unread == [0]


def _png(tmp_path: Path) -> Path:
    image = Image.new("RGB", (320, 200), (47, 111, 237))
    for x in range(0, 320, 40):
        for y in range(200):
            image.putpixel((x, y), (255, 255, 255))
    path = tmp_path / "stripes.png"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_an_image_is_sent_and_shown_to_both(visit: Any, tmp_path: Path) -> None:
    alice, bob = visit(), visit()
    alice.sign_up("alice")
    bob.sign_up("bob")
    alice.chat_with("bob")
    alice.send("a picture follows")
    bob.open("alice")

    alice.page.set_input_files("#image-input", str(_png(tmp_path)))
    for who, side in ((alice, "mine"), (bob, "theirs")):
        image = who.page.locator(f"#messages li.msg.{side} a.image img")
        expect(image).to_be_visible()
        expect(image).to_have_attribute("alt", "stripes.png")
        # Loaded (a thumbnail through the protocol's signed URL), not a broken image.
        who.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        href = image.locator("xpath=..").get_attribute("href")
        assert href.startswith("/api/v1/files/") and "sig=" in href
    screenshot(bob.page, "chat-05-image")


def test_a_group_of_three_gets_a_message(visit: Any, site: Served) -> None:
    alice, bob = visit(), visit()
    alice.sign_up("alice", "Alice")
    bob.sign_up("bob", "Bob")
    status, carol = site.call("POST", "/api/v1/auth/register", {"username": "carol", "password": PASSWORD})
    assert status == 201

    alice.page.click(".new-group summary")
    alice.page.fill("#group-name", "Trio")
    alice.page.fill("#group-members", "bob, carol")
    alice.page.click("#group-form button")
    expect(alice.page.locator("#title-name")).to_have_text("Trio")
    expect(alice.page.locator("#title-detail")).to_have_text("group · 3 members")
    expect(alice.page.locator("#messages li.system")).to_have_text("Alice created the group")
    alice.send("hello trio")
    expect(alice.message("hello trio", mine=True)).to_be_visible()

    group = bob.conversation("Trio")
    # Two unread, as the server counts them: "created the group" (seq 1) and the text.
    expect(group.locator(".badge")).to_have_text("2")
    bob.open("Trio")
    message = bob.message("hello trio", mine=False)
    expect(message).to_be_visible()
    expect(message.locator(".sender")).to_have_text("Alice")
    expect(alice.message("hello trio", mine=True).locator(".receipt")).to_have_text("Read by 1")
    screenshot(alice.page, "chat-06-group")

    # Carol, on the plain API, has it too.
    status, listed = site.call("GET", "/api/v1/conversations", token=carol["access_token"])
    assert status == 200
    [conversation] = listed["items"]
    assert conversation["group"]["name"] == "Trio" and conversation["unread"] == 2
    assert conversation["last_message"]["body"] == {"text": "hello trio"}


def test_a_hostile_display_name_and_message_render_as_text(visit: Any) -> None:
    mallory, bob = visit(), visit()
    name = "<script>alert(1)</script>"
    mallory.sign_up("mallory", name)
    bob.sign_up("bob")
    mallory.chat_with("bob")
    hostile = '<img src=x onerror="alert(2)"><b>bold?</b>'
    mallory.send(hostile)

    entry = bob.conversation(name)
    expect(entry).to_have_count(1)
    expect(entry.locator(".name")).to_have_text(name)
    bob.open(name)
    expect(bob.page.locator("#title-name")).to_have_text(name)
    expect(bob.message(hostile, mine=False).locator(".text")).to_have_text(hostile)
    expect(mallory.page.locator("#me-name")).to_have_text(name)
    assert bob.page.locator("#messages img").count() == 0
    assert bob.page.locator("#messages b, #conversations script").count() == 0
    screenshot(bob.page, "chat-07-hostile-name")
    # No dialog opened (visit checks it for every page at the end, and script errors too).
    assert bob.dialogs == [] and mallory.dialogs == []


def test_a_reload_keeps_the_session_and_catches_up(visit: Any) -> None:
    alice, bob = visit(), visit()
    alice.sign_up("alice")
    bob.sign_up("bob")
    alice.chat_with("bob")
    alice.send("first")
    bob.open("alice")
    expect(bob.message("first", mine=False)).to_be_visible()

    # While Bob's page goes away and comes back, Alice goes on writing.
    bob.page.reload()
    alice.send("while you were away")
    bob.wait_online()
    expect(bob.page.locator("#title-name")).to_have_text("alice")  # the open conversation kept
    expect(bob.message("first", mine=False)).to_be_visible()
    expect(bob.message("while you were away", mine=False)).to_be_visible()
    alice.send("and after")
    expect(bob.message("and after", mine=False)).to_be_visible()
    expect(bob.message("while you were away", mine=False)).to_have_count(1)  # once, not twice
    bob.send("back")
    expect(alice.message("back", mine=False)).to_be_visible()
    expect(alice.message("and after", mine=True).locator(".receipt")).to_have_text("Read")
    screenshot(bob.page, "chat-08-after-reload")


def test_sign_in_mistakes_are_shown_and_log_out_ends_the_session(visit: Any, site: Served) -> None:
    alice = visit()
    alice.sign_up("alice")
    alice.page.click("#logout-button")
    expect(alice.page.locator("#signin")).to_be_visible()
    alice.log_in("alice", "not the password")
    expect(alice.page.locator("#signin-error")).to_contain_text("")
    expect(alice.page.locator("#signin-error")).not_to_be_empty()
    screenshot(alice.page, "chat-09-sign-in-error")
    alice.log_in("alice")
    alice.wait_online()
    alice.page.reload()
    alice.wait_online()
    expect(alice.page.locator("#me-username")).to_have_text("@alice")


def test_a_dropped_connection_catches_up_through_sync(visit: Any) -> None:
    alice, bob = visit(), visit()
    # Alice's sockets go through a relay the test can cut (Playwright's WebSocket routing).
    live: list[Any] = []
    cut = {"on": False}

    def relay(socket: Any) -> None:
        if cut["on"]:
            socket.close(code=1001, reason="cut by the test")
            return
        live.append((socket, socket.connect_to_server()))

    alice.page.route_web_socket("**/ws**", relay)
    alice.page.reload()
    alice.sign_up("alice")
    bob.sign_up("bob")
    bob.chat_with("alice")
    bob.send("one")
    expect(alice.conversation("bob").locator(".badge")).to_have_text("1")

    cut["on"] = True
    for page_side, server_side in live:
        page_side.close(code=1001, reason="cut by the test")
        server_side.close()
    expect(alice.page.locator("#connection")).to_have_text("offline")
    bob.send("two")
    bob.send("three")
    expect(bob.message("three", mine=True).locator(".receipt")).to_have_text("Sent")
    screenshot(alice.page, "chat-10-offline")
    expect(alice.conversation("bob").locator(".badge")).to_have_text("1")  # nothing came meanwhile

    cut["on"] = False  # the page's next reconnect gets through, and syncs from its cursors
    expect(alice.page.locator("#connection")).to_have_text("online", timeout=30000)
    expect(alice.conversation("bob").locator(".badge")).to_have_text("3")
    alice.open("bob")
    for text in ("one", "two", "three"):
        expect(alice.message(text, mine=False)).to_have_count(1)
    expect(bob.message("three", mine=True).locator(".receipt")).to_have_text("Read")
    screenshot(alice.page, "chat-11-after-sync")

    # Written while cut off, then the page reloaded before it could go: the message is kept
    # in the tab and sent once the socket is back, once.
    cut["on"] = True
    for page_side, server_side in live:
        page_side.close(code=1001, reason="cut by the test")
        server_side.close()
    expect(alice.page.locator("#connection")).to_have_text("offline")
    alice.send("written offline")
    pending = alice.page.locator("#messages li.pending", has_text="written offline")
    expect(pending.locator(".receipt")).to_have_text("Sending…")
    alice.page.reload()
    expect(pending.locator(".receipt")).to_have_text("Sending…")
    screenshot(alice.page, "chat-12-unsent-after-reload")
    cut["on"] = False
    expect(alice.message("written offline", mine=True).locator(".receipt")).to_have_text("Read", timeout=30000)
    expect(bob.message("written offline", mine=False)).to_have_count(1)
    expect(alice.page.locator("#messages li.pending")).to_have_count(0)


def test_a_disabled_account_is_signed_out_of_the_page(visit: Any, tmp_path: Path) -> None:
    alice = visit()
    alice.sign_up("alice")
    # The operator disables her (the `site` fixture serves tmp_path/data): the server kicks
    # her socket (`kick`, reason "disabled") and the page says so, without tokens kept.
    result = lucky("user", "disable", "alice", "--data-dir", tmp_path / "data")
    assert result.code == 0, result
    expect(alice.page.locator("#signin")).to_be_visible(timeout=15000)
    # (A disable by the CLI reaches the server as an ended session: the reason the page gets
    # depends on which process noticed it, so only "signed out" or "disabled" is asserted.)
    expect(alice.page.locator("#signin-error")).to_have_text(re.compile("signed out|disabled|ended"))
    assert alice.page.evaluate("sessionStorage.getItem('lucky.chat.v1')") is None
    screenshot(alice.page, "chat-13-disabled")
    alice.log_in("alice")
    expect(alice.page.locator("#signin-error")).not_to_be_empty()
    expect(alice.page.locator("#app")).to_be_hidden()
