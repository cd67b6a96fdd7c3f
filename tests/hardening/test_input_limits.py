"""Limits on every input (issue 9; PROTOCOL.md, "Limits on every input").

Nothing a client sends gives a 500, closes a socket without an error frame, fails another
user's request or makes a stored message unreadable: JSON nested deeper than 32 levels is 400
(`error invalid_frame` on the socket, which stays open); an integer outside ±(2^53-1) in any
field is 422 (`error validation_failed`); a `custom` body is at most 16 KiB and 16 levels; a
malformed query value is 422, a cursor this server did not issue 400, a mangled signature on a
file link the files code's own 403. A row stored before these limits (or otherwise not
servable) reads back as a placeholder instead of failing its page.

Everything goes through a real server (both databases) with real HTTP and WebSocket clients.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import hypothesis
import pytest
from hypothesis import strategies as st

from lucky_server.chat.model import ConversationRef
from lucky_server.chat.writer import PendingSend
from lucky_server.errors import LuckyError
from lucky_server.json_limits import MAX_DEPTH, first_unsafe_int, nesting_exceeds, unsafe_int_field
from lucky_server.keys import CORE

from ..chat.conftest import Chat, Device, User, assert_error, chat, direct_id, http_error, make_chat  # noqa: F401

TWO_64 = 2**64
SAFE = 2**53 - 1


def nested(levels: int, leaf: Any = 1) -> Any:
    """`levels` arrays, one inside the other, around `leaf`."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def nested_text(levels: int) -> str:
    return "[" * levels + "]" * levels


def custom_body(levels: int) -> dict[str, Any]:
    """A custom body (an object: level 1) whose arrays take it to `levels` levels in all."""
    return {"deep": nested(levels - 1)}


async def pair(chat: Chat) -> tuple[User, User, Device, Device]:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    return alice, bob, await chat.connect(alice), await chat.connect(bob)


async def still_open(device: Device) -> None:
    """The socket is open and answers (a ping gets its pong)."""
    assert await device.request({"type": "ping"}, "pong")


async def history(user: User, cid: str, query: str = "") -> tuple[int, Any]:
    return await user.api.call("GET", f"/api/v1/conversations/{cid}/messages{query}")


async def upload(user: User, content: bytes = b"some bytes") -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename="a.bin")
    status, file = await user.api.call("POST", "/api/v1/files", data=form)
    assert status == 201, file
    return dict(file)


# --- a custom body: at most 16 levels and 16 KiB ----------------------------------------------------

async def test_a_custom_body_holds_16_levels_not_17_over_websocket_and_http(chat: Chat) -> None:
    alice, bob, a, b = await pair(chat)
    cid = direct_id(alice, bob)
    sent = await a.request({"type": "send", "to": bob.id, "client_msg_id": "ok", "kind": "custom",
                            "body": custom_body(16)}, "sent")
    assert sent["message"]["body"] == custom_body(16)
    assert (await b.expect("message"))["message"] == sent["message"]

    frame_id = Device.fresh_id("deep")
    await a.send({"type": "send", "id": frame_id, "to": bob.id, "client_msg_id": "deep", "kind": "custom",
                  "body": custom_body(17)})
    assert_error(await a.recv(), "validation_failed", frame_id, "body")
    http_error(await alice.api.call("POST", f"/api/v1/conversations/{cid}/messages",
                                    {"client_msg_id": "deep-http", "kind": "custom", "body": custom_body(17)}),
               422, "validation_failed", "body")

    # an edit goes through the same check, and leaves the message as it was
    message_id = sent["message"]["id"]
    frame_id = Device.fresh_id("edit")
    await a.send({"type": "edit", "id": frame_id, "message_id": message_id, "body": custom_body(17)})
    assert_error(await a.recv(), "validation_failed", frame_id, "body")
    await still_open(a)
    status, page = await history(bob, cid)
    assert status == 200, page
    assert [m["body"] for m in page["items"]] == [custom_body(16)]
    await b.nothing_pending()


async def test_the_nesting_that_poisoned_history_is_refused_and_the_sender_hears_why(chat: Chat) -> None:
    # ~252 levels used to be stored and then break every read; 253 got no answer at all.
    alice, bob, a, b = await pair(chat)
    for levels in (252, 253):
        frame_id = Device.fresh_id("poison")
        await a.send({"type": "send", "id": frame_id, "to": bob.id, "client_msg_id": f"p{levels}",
                      "kind": "custom", "body": custom_body(levels)})
        frame = await a.recv()
        assert_error(frame, "invalid_frame")
        await still_open(a)
        status, body = await alice.api.call("POST", f"/api/v1/conversations/{direct_id(alice, bob)}/messages",
                                            {"client_msg_id": f"h{levels}", "kind": "custom",
                                             "body": custom_body(levels)})
        http_error((status, body), 400, "invalid_request")
    assert await history(alice, direct_id(alice, bob)) == (200, {"items": [], "has_more": False})
    await b.nothing_pending()


# --- rows that cannot be served: placeholders, never a failed page ---------------------------------

async def _store_bad_rows(chat: Chat, alice: User, bob: User, a: Device) -> list[dict[str, Any]]:
    """Four messages; the 2nd and 3rd rewritten as an older server could have left them: a body
    254 levels deep (orjson could store it, and not write it back inside a message) and a body
    that is not JSON at all."""
    sent = []
    for index in range(4):
        sent.append((await a.request({"type": "send", "to": bob.id, "client_msg_id": f"m{index}", "kind": "custom",
                                      "body": {"n": index}}, "sent"))["message"])
    db = chat.client.server.app[CORE].db
    await db.execute("poison", "UPDATE messages SET body = ? WHERE id = ?",
                     ('{"deep":' + nested_text(253) + "}", int(sent[1]["id"])))
    await db.execute("poison", "UPDATE messages SET body = ? WHERE id = ?", ("{not json", int(sent[2]["id"])))
    return sent


def _placeholder(original: dict[str, Any]) -> dict[str, Any]:
    return {**original, "body": {}, "unreadable": True}


async def test_a_row_that_cannot_be_served_is_a_placeholder_in_history_sync_and_the_list(chat: Chat) -> None:
    alice, bob, a, b = await pair(chat)
    sent = await _store_bad_rows(chat, alice, bob, a)
    assert [(await b.expect("message"))["message"] for _ in range(4)] == sent  # pushed before the rewrite
    expected = [sent[0], _placeholder(sent[1]), _placeholder(sent[2]), sent[3]]
    cid = direct_id(alice, bob)

    for user in (alice, bob):  # history, every page that holds a bad row, for both members
        assert await history(user, cid) == (200, {"items": expected, "has_more": False})
        assert await history(user, cid, "?after_seq=1&limit=2") == (200, {"items": expected[1:3], "has_more": True})
        assert await history(user, cid, "?before_seq=4&limit=1") == (200, {"items": expected[2:3], "has_more": True})

    # the conversation list, whose last message is a bad row
    db = chat.client.server.app[CORE].db
    await db.execute("poison", "UPDATE messages SET body = ? WHERE id = ?", ("[1, 2]", int(sent[3]["id"])))
    status, page = await bob.api.call("GET", "/api/v1/conversations")
    assert status == 200, page
    assert page["items"][0]["last_message"] == _placeholder(sent[3])

    # sync from 0 gets all four, the socket stays open
    for device in (a, b):
        result = await device.request({"type": "sync", "cursors": {}}, "sync.result")
        assert result["messages"] == [*expected[:3], _placeholder(sent[3])] and result["more"] is False
        await still_open(device)

    # a bad row can be mended by its sender: an edit replaces the body
    await a.send({"type": "edit", "id": "mend", "message_id": sent[2]["id"], "body": {"n": "mended"}})
    assert (await a.expect("message.updated"))["message"]["body"] == {"n": "mended"}
    assert await a.recv() == {"type": "ok", "id": "mend"}
    updated = (await b.expect("message.updated"))["message"]
    assert updated == {**sent[2], "body": {"n": "mended"}, "edited_at": updated["edited_at"]}


async def test_a_resend_of_an_unacked_bad_row_is_a_placeholder_too(chat: Chat) -> None:
    alice, bob, a, b = await pair(chat)
    sent = await _store_bad_rows(chat, alice, bob, a)
    pushed = [(await b.expect("message"))["message"] for _ in range(4)]
    assert [m["id"] for m in pushed] == [m["id"] for m in sent]
    chat.clock.advance(60)  # no ack: the sweeper pushes them again, from the database
    await chat.service.resend_overdue()
    again = [(await b.expect("message"))["message"] for _ in range(4)]
    assert again == [sent[0], _placeholder(sent[1]), _placeholder(sent[2]), sent[3]]


# --- JSON nested deeper than 32 levels --------------------------------------------------------------

async def test_json_nested_1000_levels_is_400_even_before_sign_in(chat: Chat) -> None:
    body = '{"username": "alice", "password": "correct horse", "device": ' + nested_text(1000) + "}"
    async with chat.client.post("/api/v1/auth/login", data=body,
                                headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_request"
    alice, bob = await chat.user("alice"), await chat.user("bob")
    cid = direct_id(alice, bob)
    for raw in (nested_text(100_000), '{"client_msg_id": "x", "kind": "custom", "body": {"a": ' + nested_text(40) + "}}",
                "{" * 5000):
        async with chat.client.post(f"/api/v1/conversations/{cid}/messages", data=raw,
                                    headers={**alice.api.headers(), "Content-Type": "application/json"}) as resp:
            assert resp.status == 400, await resp.text()
            assert (await resp.json())["error"]["code"] == "invalid_request"
    assert await history(alice, cid) == (200, {"items": [], "has_more": False})


async def test_32_levels_pass_and_33_do_not(chat: Chat) -> None:
    alice, bob, a, _ = await pair(chat)
    # a frame is level 1, so a field holds 31 more levels; unknown fields are ignored
    ok = json.dumps({"type": "ping", "id": "p32", "pad": nested(31)})
    await a.send_raw(ok)
    assert await a.recv() == {"type": "pong", "id": "p32"}
    await a.send_raw(json.dumps({"type": "ping", "id": "p33", "pad": nested(32)}))
    assert_error(await a.recv(), "invalid_frame")
    # brackets inside strings are text, not nesting
    await a.send_raw(json.dumps({"type": "ping", "id": "s", "pad": "[" * 500 + "{" * 500}))
    assert await a.recv() == {"type": "pong", "id": "s"}

    status, _ = await alice.api.call("PATCH", "/api/v1/me", {"display_name": "Al", "pad": nested(31)})
    assert status == 200
    http_error(await alice.api.call("PATCH", "/api/v1/me", {"display_name": "Al", "pad": nested(32)}),
               400, "invalid_request")


async def test_a_deep_frame_gets_invalid_frame_and_the_socket_stays_open(chat: Chat) -> None:
    alice, bob, a, b = await pair(chat)
    for raw in (nested_text(1000), '{"type": "ping", "id": "x", "pad": ' + nested_text(30_000) + "}",
                "[" * 60_000, '{"type": "sync", "cursors": ' + "{" * 5000):
        await a.send_raw(raw)
        frame = await a.recv()
        assert_error(frame, "invalid_frame")
        assert "id" not in frame
        await still_open(a)
    sent = await a.send_text(bob.id, "still here", "after")
    assert (await b.expect("message"))["message"] == sent["message"]


# --- integers outside ±(2^53-1) ---------------------------------------------------------------------

async def test_integers_out_of_range_in_frames_are_validation_failed_and_the_socket_stays_open(chat: Chat) -> None:
    alice, bob, a, b = await pair(chat)
    cid = direct_id(alice, bob)
    await a.send_raw('{"type": "ping", "id": %d}' % TWO_64)
    frame = await a.recv()
    assert_error(frame, "validation_failed", field="id")
    assert "id" not in frame  # an id that cannot be echoed is not echoed
    await a.send_raw('{"type": "ping", "id": %d}' % SAFE)
    assert await a.recv() == {"type": "pong", "id": SAFE}

    file = await upload(alice)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "send", "to": bob.id, "client_msg_id": "img", "kind": "image",
          "body": {"file_id": file["id"], "size": TWO_64}}, "body.size"),
        ({"type": "send", "to": bob.id, "client_msg_id": "big", "kind": "custom", "body": {"n": [1, -TWO_64]}},
         "body.n[1]"),
        ({"type": "send", "to": bob.id, "client_msg_id": "big", "kind": "custom", "body": {"n": SAFE + 1}}, "body.n"),
        ({"type": "ack", "conversation_id": cid, "seq": TWO_64}, "seq"),
        ({"type": "read", "conversation_id": cid, "seq": 10**23}, "seq"),
        ({"type": "sync", "cursors": {cid: TWO_64}}, f"cursors.{cid}"),
        ({"type": "sync", "cursors": {}, "limit": -TWO_64}, "limit"),
        ({"type": "ping", "unknown": TWO_64}, "unknown"),
    ]
    for frame, field in cases:
        frame_id = Device.fresh_id("int")
        await a.send_raw(json.dumps({**frame, "id": frame_id}))
        assert_error(await a.recv(), "validation_failed", frame_id, field)
        await still_open(a)

    # the largest safe integer is a value like any other
    sent = await a.request({"type": "send", "to": bob.id, "client_msg_id": "safe", "kind": "image",
                            "body": {"file_id": file["id"], "size": SAFE}}, "sent")
    assert sent["message"]["body"]["size"] == SAFE and sent["message"]["seq"] == 1
    assert (await b.expect("message"))["message"] == sent["message"]


async def test_integers_out_of_range_in_http_bodies_are_422(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    cid = direct_id(alice, bob)
    file = await upload(alice)
    posts: list[tuple[str, dict[str, Any], str]] = [
        (f"/api/v1/conversations/{cid}/messages",
         {"client_msg_id": "img", "kind": "image", "body": {"file_id": file["id"], "size": TWO_64}}, "body.size"),
        (f"/api/v1/conversations/{cid}/messages",
         {"client_msg_id": "c", "kind": "custom", "body": {"n": 10**23}}, "body.n"),
        (f"/api/v1/conversations/{cid}/read", {"seq": TWO_64}, "seq"),
        ("/api/v1/uploads", {"name": "a.bin", "size": TWO_64, "md5": "0" * 32}, "size"),
    ]
    for path, body, field in posts:
        http_error(await alice.api.call("POST", path, body), 422, "validation_failed", field)
    # before sign-in too, in a field the route does not even read
    async with chat.client.post("/api/v1/auth/login", data='{"username": "alice", "password": "x", "n": %d}' % TWO_64,
                                headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["details"]["field"] == "n"
    assert await history(alice, cid) == (200, {"items": [], "has_more": False})


async def test_one_bad_send_never_fails_another_users_send(chat: Chat) -> None:
    alice, bob, a, b = await pair(chat)
    carol = await chat.user("carol")
    c = await chat.connect(carol)
    file = await upload(alice)
    # both frames are on the wire before either is answered: they reach the writer together
    bad_id, good_id = Device.fresh_id("bad"), Device.fresh_id("good")
    await asyncio.gather(
        a.send({"type": "send", "id": bad_id, "to": bob.id, "client_msg_id": "bad", "kind": "file",
                "body": {"file_id": file["id"], "size": TWO_64}}),
        c.send({"type": "send", "id": good_id, "to": bob.id, "client_msg_id": "good", "kind": "text",
                "body": {"text": "hello bob"}}))
    assert_error(await a.recv(), "validation_failed", bad_id, "body.size")
    sent = await c.expect("sent")
    assert sent["id"] == good_id and sent["message"]["body"] == {"text": "hello bob"}
    assert (await b.expect("message"))["message"] == sent["message"]


def _pending(sender: User, to: User, cmid: str, body: Any = None, effect: Any = None) -> PendingSend:
    ref = ConversationRef.direct(int(sender.id), int(to.id))
    return PendingSend(ref, int(sender.id), "custom", body or {"n": cmid}, cmid, None, ref.user_ids, effect=effect)


async def _store_together(chat: Chat, sends: list[PendingSend]) -> list[Any]:
    for send in sends:  # queued in one turn of the loop: the writer takes them as one batch
        chat.service.writer.enqueue(send)
    return list(await asyncio.gather(*(s.future for s in sends), return_exceptions=True))


async def test_the_writer_fails_a_body_it_cannot_store_alone_and_at_once(chat: Chat) -> None:
    # The edges refuse such a body; any other caller's must not fail the batch it came with.
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    batches = chat.service.writer.batches
    results = await _store_together(chat, [_pending(alice, bob, "a1"), _pending(carol, bob, "c1", {"n": TWO_64}),
                                           _pending(alice, bob, "a2"), _pending(carol, alice, "c2")])
    assert isinstance(results[1], LuckyError) and (results[1].status, results[1].code) == (422, "validation_failed")
    assert [(m.client_msg_id, m.seq) for m, _ in results[::2] + results[3:]] == [("a1", 1), ("a2", 2), ("c2", 1)]
    assert chat.service.writer.batches == batches + 1  # the others were stored together, at once
    status, page = await history(bob, direct_id(alice, bob))
    assert [m["client_msg_id"] for m in page["items"]] == ["a1", "a2"]
    assert await history(bob, direct_id(carol, bob)) == (200, {"items": [], "has_more": False})


async def test_the_writer_fails_only_the_send_that_failed_in_its_batch(chat: Chat) -> None:
    # A send can also fail inside the writer's transaction (here: its effect raises). The
    # others queued with it must be stored and answered all the same, in order.
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")

    async def broken(tx: Any, message: Any) -> None:
        raise RuntimeError("this send's effect fails")

    results = await _store_together(chat, [_pending(alice, bob, "a1"), _pending(carol, bob, "c1", effect=broken),
                                           _pending(alice, bob, "a2"), _pending(carol, alice, "c2")])
    assert isinstance(results[1], Exception)
    assert [(m.client_msg_id, m.seq) for m, _ in results[::2] + results[3:]] == [("a1", 1), ("a2", 2), ("c2", 1)]
    status, page = await history(bob, direct_id(alice, bob))
    assert [m["client_msg_id"] for m in page["items"]] == ["a1", "a2"]
    assert await history(bob, direct_id(carol, bob)) == (200, {"items": [], "has_more": False})


# --- malformed values in a query or a cursor --------------------------------------------------------

@pytest.mark.parametrize("value", ["²", "١", "-1", "1.5", "1e3", "0x10", "100000000000000000000000", str(TWO_64),
                                   "9" * 5000, "%00"])
@pytest.mark.parametrize("name", ["after_seq", "before_seq", "limit"])
async def test_a_malformed_history_query_is_422(chat: Chat, name: str, value: str) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    http_error(await history(alice, direct_id(alice, bob), f"?{name}={quote(value, safe='%')}"),
               422, "validation_failed", name)


async def test_history_takes_any_safe_seq(chat: Chat) -> None:
    alice, bob, a, _ = await pair(chat)
    await a.send_text(bob.id, "one", "m1")
    cid = direct_id(alice, bob)
    assert await history(alice, cid, f"?after_seq={SAFE}") == (200, {"items": [], "has_more": False})
    status, page = await history(alice, cid, f"?before_seq={SAFE}")
    assert status == 200 and [m["seq"] for m in page["items"]] == [1]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Cursors no list issues: garbage, and what the old cursor formats decode to, with huge ints.
FOREIGN_CURSORS = ["%%%", "////", "_w", "YQ", "%C2%B2", "AAAAAAAAAAAA", _b64(b"100000000000000000000000"),
                   _b64(b"o100000000000000000000000"), _b64(b"100000000000000000000000|p:1:2"),
                   _b64(b'["friends",100000000000000000000000]'), _b64(b'["search",-1]'), _b64(b"[" * 5000),
                   "A" * 5000]
LISTS = ["/api/v1/conversations?", "/api/v1/friends?", "/api/v1/friends/requests?direction=in&",
         "/api/v1/friends/requests?direction=out&", "/api/v1/users?q=a&", "/api/v1/search/messages?q=hello&"]


@pytest.mark.parametrize("cursor", FOREIGN_CURSORS)
async def test_a_cursor_no_list_issued_is_400_on_every_list(chat: Chat, cursor: str) -> None:
    alice = await chat.user("alice")
    for path in LISTS:
        http_error(await alice.api.call("GET", f"{path}cursor={cursor}"), 400, "invalid_request", "cursor")


async def test_a_cursor_works_only_on_the_list_that_issued_it(chat: Chat) -> None:
    alice = await chat.user("alice")
    for name in ("anna", "anne", "anny"):
        await chat.user(name)
    status, page = await alice.api.call("GET", "/api/v1/users?q=an&limit=1")
    assert status == 200 and page["next_cursor"]
    cursor = page["next_cursor"]
    status, rest = await alice.api.call("GET", f"/api/v1/users?q=an&limit=5&cursor={cursor}")
    assert status == 200 and [u["username"] for u in rest["items"]] == ["anne", "anny"]
    for path in LISTS:
        if not path.startswith("/api/v1/users"):
            http_error(await alice.api.call("GET", f"{path}cursor={cursor}"), 400, "invalid_request", "cursor")


# --- a signed file link with a mangled signature ------------------------------------------------------

@pytest.mark.parametrize("sig", ["é", "%C3%A9" * 32, "%FF", "%00", "zz", "x" * 5000, ""])
async def test_a_mangled_signature_on_a_file_link_is_403_never_500(chat: Chat, sig: str) -> None:
    alice = await chat.user("alice")
    file = await upload(alice)
    url = urlsplit(file["url"])
    exp = dict(part.split("=", 1) for part in url.query.split("&"))["exp"]
    for variant in ("content", "thumbnail"):
        async with chat.client.get(f"/api/v1/files/{file['id']}/{variant}?exp={exp}&sig={sig}") as resp:
            assert resp.status == 403, await resp.text()
            assert (await resp.json())["error"]["code"] == "forbidden"
    async with chat.client.get(f"{url.path}?{url.query}") as resp:  # the real link still works
        assert resp.status == 200 and await resp.read() == b"some bytes"


# --- the depth check itself, against a plain walk ------------------------------------------------------

def _depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _spine(rng: random.Random, levels: int) -> Any:
    """A value `levels` deep along one path, with shallow siblings and bracket-laden strings."""
    if levels == 0:
        return rng.choice([1, "x[{", '"]}\\', None, 2.5])
    children = [_spine(rng, levels - 1)] + [rng.choice([1, "[[", [], {}, [[1]], {"a[": {}}])
                                           for _ in range(rng.randint(0, 2))]
    rng.shuffle(children)
    return children if rng.random() < 0.5 else {f'k{i}"{{': c for i, c in enumerate(children)}


def test_the_depth_check_agrees_with_a_walk_of_the_decoded_value() -> None:
    rng = random.Random(9)
    for _ in range(3000):
        value = _spine(rng, rng.randint(28, 36))
        text = json.dumps(value)
        expected = _depth(value) > MAX_DEPTH
        assert nesting_exceeds(text) is expected, text
        assert nesting_exceeds(text.encode()) is expected, text
    # brackets that do not pair up, with more than MAX_DEPTH of them, are refused as well
    assert nesting_exceeds("[" * 40) and nesting_exceeds("[}" * 40 + "[" * 33)
    assert not nesting_exceeds("[]" * 1000) and not nesting_exceeds('"' + "[" * 1000 + '"')


_IDS = st.integers(min_value=0, max_value=2**70).map(str)
_INTS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                  st.sampled_from([SAFE, SAFE + 1, -SAFE, -SAFE - 1, TWO_64]))
_SCALARS = st.one_of(_INTS, _IDS, _IDS.map(lambda i: f"p:{i}:{i}"), st.floats(allow_nan=False, allow_infinity=False),
                     st.booleans(), st.none(), st.text(alphabet='0123456789:",[ -', max_size=40))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(alphabet='0123456789:"ab', max_size=8), inner, max_size=4), max_leaves=12)


@hypothesis.settings(max_examples=500, deadline=None, database=None)
@hypothesis.given(value=_VALUES, indent=st.sampled_from([None, 1]))
def test_the_integer_scan_agrees_with_a_walk_of_the_decoded_value(value: Any, indent: int | None) -> None:
    # The scan only decides whether to decode and walk: it must never pass over an unsafe
    # integer, whatever digits, colons and quotes the strings around it hold.
    text = json.dumps(value, indent=indent)
    expected = first_unsafe_int(json.loads(text))
    assert unsafe_int_field(text) == expected, text
