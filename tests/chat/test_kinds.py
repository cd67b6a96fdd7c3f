"""Message kinds and their bodies, checked the same on WebSocket `send` and HTTP POST."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .conftest import Chat, assert_error, direct_id, http_error

GOOD = [
    ("text", {"text": "x" * 8000}, {"text": "x" * 8000}),
    ("text", {"text": "hi", "mentions": ["PEER"], "extra": 1}, {"text": "hi", "mentions": ["PEER"]}),
    ("location", {"lat": 90, "lng": -180, "title": "pole"}, {"lat": 90.0, "lng": -180.0, "title": "pole"}),
    ("custom", {"card": {"n": [1, 2]}, "pad": "x" * 16000}, {"card": {"n": [1, 2]}, "pad": "x" * 16000}),
    ("image", {"file_id": "123", "width": 10, "height": 20}, {"file_id": "123", "width": 10, "height": 20}),
]

BAD = [
    ("text", {"text": "x" * 8001}, "body.text"),
    ("text", {"text": "   "}, "body.text"),
    ("text", {"text": 5}, "body.text"),
    ("text", "just a string", "body"),
    ("location", {"lat": 90.5, "lng": 0}, "body.lat"),
    ("location", {"lat": -91, "lng": 0}, "body.lat"),
    ("location", {"lat": 0, "lng": 181}, "body.lng"),
    ("location", {"lat": "north", "lng": 0}, "body.lat"),
    ("custom", {"pad": "x" * (16 * 1024)}, "body"),
    ("image", {"file_id": "not-an-id"}, "body.file_id"),
    ("file", {}, "body.file_id"),
    ("video", {"file_id": "12", "duration_ms": -1}, "body.duration_ms"),
    ("system", {"event": "group.created"}, "kind"),
    ("sticker", {}, "kind"),
]


@pytest.mark.parametrize(("kind", "body", "stored"), GOOD, ids=[g[0] for g in GOOD])
async def test_good_bodies_are_stored_clean(chat: Chat, kind: str, body: Any, stored: Any) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    if "mentions" in body:  # mentions name the peer
        body, stored = {**body, "mentions": [bob.id]}, {**stored, "mentions": [bob.id]}
    if "file_id" in body:  # a media message names a file its sender can read: upload one
        form = aiohttp.FormData()
        form.add_field("file", b"bytes", filename="a.bin")
        status, file = await alice.api.call("POST", "/api/v1/files", data=form)
        assert status == 201, file
        body, stored = {**body, "file_id": file["id"]}, {**stored, "file_id": file["id"]}
    sent = await a.request({"type": "send", "to": bob.id, "client_msg_id": "ws", "kind": kind, "body": body}, "sent")
    assert sent["message"]["kind"] == kind and sent["message"]["body"] == stored
    assert (await b.expect("message"))["message"] == sent["message"]

    status, message = await alice.api.call("POST", f"/api/v1/conversations/{direct_id(alice, bob)}/messages",
                                           {"client_msg_id": "http", "kind": kind, "body": body})
    assert status == 201, message
    assert message["body"] == stored and message["seq"] == 2


async def test_bad_bodies_are_refused_and_nothing_is_stored(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    cid = direct_id(alice, bob)
    for index, (kind, body, field) in enumerate(BAD):
        await a.send({"type": "send", "id": index, "to": bob.id, "client_msg_id": f"m{index}", "kind": kind,
                      "body": body})
        assert_error(await a.recv(), "validation_failed", index, field)
        http_error(await alice.api.call("POST", f"/api/v1/conversations/{cid}/messages",
                                        {"client_msg_id": f"h{index}", "kind": kind, "body": body}),
                   422, "validation_failed", field)
    await b.nothing_pending()
    status, page = await alice.api.call("GET", "/api/v1/conversations")
    assert status == 200 and page["items"] == []
