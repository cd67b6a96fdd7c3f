"""The HTTP side of messaging: POST a message, history by seq, the conversation list, flags."""

from __future__ import annotations

from typing import Any

from .conftest import Chat, User, direct_id, http_error


async def _post(chat: Chat, user: User, cid: str, cmid: str, text: str = "hi") -> tuple[int, Any]:
    return await user.api.call("POST", f"/api/v1/conversations/{cid}/messages",
                               {"client_msg_id": cmid, "kind": "text", "body": {"text": text}})


async def test_post_a_message_201_then_200_for_the_repeat_and_every_device_gets_it(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    cid = direct_id(alice, bob)

    status, message = await _post(chat, alice, cid, "h1", "over http")
    assert status == 201, message
    assert set(message) == {"id", "conversation_id", "seq", "sender_id", "kind", "body", "client_msg_id",
                            "created_at"}
    assert message["seq"] == 1 and message["sender_id"] == alice.id and message["conversation_id"] == cid
    # a POST has no socket of its own: all of the sender's devices get the message too
    assert await b.barrier() == [{"type": "message", "message": message}]
    assert await a.barrier() == [{"type": "message", "message": message}]

    status, again = await _post(chat, alice, cid, "h1", "over http")
    assert status == 200 and again == message
    await b.nothing_pending()
    await a.nothing_pending()

    # the same client_msg_id over WebSocket is the same message too
    sent = await a.send_text(bob.id, "over http", "h1")
    assert sent["message"] == message


async def test_post_errors(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    cid = direct_id(alice, bob)
    http_error(await _post(chat, carol, cid, "x"), 404, "not_found")
    http_error(await _post(chat, alice, "p:1:junk", "x"), 404, "not_found")
    http_error(await _post(chat, alice, f"p:{alice.id}", "x"), 404, "not_found")
    http_error(await alice.api.call("POST", f"/api/v1/conversations/{cid}/messages", {"kind": "text",
                                                                                     "body": {"text": "x"}}),
               422, "validation_failed", "client_msg_id")
    status, body = await alice.api.call("POST", f"/api/v1/conversations/{cid}/messages", data=b"{nope",
                                        headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    http_error(await chat.api.call("POST", f"/api/v1/conversations/{cid}/messages",
                                               {"client_msg_id": "x", "kind": "text", "body": {"text": "x"}}),
               401, "unauthorized")
    status, page = await alice.api.call("GET", "/api/v1/conversations")
    assert page["items"] == []


async def test_history_pages_by_seq_in_both_directions(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    cid = direct_id(alice, bob)
    for i in range(1, 8):
        status, _ = await _post(chat, alice if i % 2 else bob, cid, f"m{i}", f"text {i}")
        assert status == 201

    async def page(query: str) -> tuple[list[int], bool]:
        status, body = await bob.api.call("GET", f"/api/v1/conversations/{cid}/messages{query}")
        assert status == 200, body
        assert set(body) == {"items", "has_more"}
        return [m["seq"] for m in body["items"]], body["has_more"]

    # neither: the latest `limit`, ascending; has_more looks towards older ones
    assert await page("") == ([1, 2, 3, 4, 5, 6, 7], False)
    assert await page("?limit=3") == ([5, 6, 7], True)
    assert await page("?limit=7") == ([1, 2, 3, 4, 5, 6, 7], False)
    # before_seq: the `limit` just before N
    assert await page("?before_seq=5&limit=3") == ([2, 3, 4], True)
    assert await page("?before_seq=4&limit=3") == ([1, 2, 3], False)
    assert await page("?before_seq=2&limit=3") == ([1], False)
    assert await page("?before_seq=1") == ([], False)
    assert await page("?before_seq=100&limit=2") == ([6, 7], True)
    # after_seq: N+1..N+limit
    assert await page("?after_seq=0&limit=3") == ([1, 2, 3], True)
    assert await page("?after_seq=3&limit=3") == ([4, 5, 6], True)
    assert await page("?after_seq=4&limit=3") == ([5, 6, 7], False)
    assert await page("?after_seq=7") == ([], False)
    assert await page("?after_seq=0&limit=200") == ([1, 2, 3, 4, 5, 6, 7], False)

    status, body = await bob.api.call("GET", f"/api/v1/conversations/{cid}/messages?after_seq=1&limit=1")
    assert body["items"][0]["body"] == {"text": "text 2"} and body["items"][0]["sender_id"] == bob.id

    # a conversation of mine without messages yet is an empty page
    carol = await chat.user("carol")
    status, body = await bob.api.call("GET", f"/api/v1/conversations/{direct_id(bob, carol)}/messages")
    assert status == 200 and body == {"items": [], "has_more": False}


async def test_history_errors(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    cid = direct_id(alice, bob)
    assert (await _post(chat, alice, cid, "m1"))[0] == 201
    base = f"/api/v1/conversations/{cid}/messages"
    http_error(await alice.api.call("GET", base + "?limit=201"), 422, "validation_failed", "limit")
    http_error(await alice.api.call("GET", base + "?limit=0"), 422, "validation_failed", "limit")
    http_error(await alice.api.call("GET", base + "?after_seq=x"), 422, "validation_failed", "after_seq")
    http_error(await alice.api.call("GET", base + "?before_seq=-1"), 422, "validation_failed", "before_seq")
    http_error(await alice.api.call("GET", base + "?before_seq=3&after_seq=1"), 422, "validation_failed")
    # another user's conversation, a malformed id: 404, nothing leaks
    http_error(await carol.api.call("GET", base), 404, "not_found")
    low, high = sorted((alice.id, bob.id))
    for bad in ("nonsense", "p:1:2:3", f"p:{high}:{low}", f"p:{low}:{high}x", f"p:0{low}:{high}", "g:abc"):
        http_error(await alice.api.call("GET", f"/api/v1/conversations/{bad}/messages"), 404, "not_found")
    http_error(await chat.api.call("GET", base), 401, "unauthorized")


async def test_read_over_http_and_its_errors(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    cid = direct_id(alice, bob)
    for i in range(2):
        assert (await _post(chat, alice, cid, f"m{i}"))[0] == 201
    http_error(await carol.api.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": 1}), 404, "not_found")
    http_error(await bob.api.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": 3}),
               422, "validation_failed", "seq")
    http_error(await bob.api.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": "1"}),
               422, "validation_failed", "seq")
    http_error(await bob.api.call("POST", f"/api/v1/conversations/{cid}/read", {}), 422, "validation_failed", "seq")
    http_error(await bob.api.call("POST", "/api/v1/conversations/junk/read", {"seq": 1}), 404, "not_found")

    # over WebSocket, another user's conversation is not_found as well
    c = await chat.connect(carol)
    await c.send({"type": "read", "id": "r", "conversation_id": cid, "seq": 1})
    frame = await c.recv()
    assert (frame["type"], frame["code"], frame["id"]) == ("error", "not_found", "r")

    assert (await bob.api.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": 2}))[0] == 204
    status, page = await bob.api.call("GET", "/api/v1/conversations")
    assert (page["items"][0]["read_seq"], page["items"][0]["unread"]) == (2, 0)


async def test_the_conversation_list_newest_first_with_peer_last_message_and_unread(chat: Chat) -> None:
    alice, bob, carol, dave = [await chat.user(n) for n in ("alice", "bob", "carol", "dave")]
    with_bob, with_carol, with_dave = direct_id(alice, bob), direct_id(alice, carol), direct_id(alice, dave)

    assert (await _post(chat, alice, with_bob, "b1", "to bob"))[0] == 201
    chat.clock.advance(1)
    assert (await _post(chat, carol, with_carol, "c1", "from carol"))[0] == 201
    chat.clock.advance(1)
    assert (await _post(chat, dave, with_dave, "d1", "from dave 1"))[0] == 201
    assert (await _post(chat, dave, with_dave, "d2", "from dave 2"))[0] == 201
    chat.clock.advance(1)
    assert (await _post(chat, bob, with_bob, "b2", "from bob"))[0] == 201

    status, page = await alice.api.call("GET", "/api/v1/conversations")
    assert status == 200
    assert page["next_cursor"] is None
    items = page["items"]
    assert [i["conversation_id"] for i in items] == [with_bob, with_dave, with_carol]
    first = items[0]
    assert first["kind"] == "direct"
    assert first["peer"]["id"] == bob.id and first["peer"]["username"] == "bob"
    assert first["last_message"]["client_msg_id"] == "b2"
    assert first["last_message"]["body"] == {"text": "from bob"}
    assert (first["last_seq"], first["read_seq"], first["unread"]) == (2, 1, 1)
    assert (first["muted"], first["pinned"]) == (False, False)
    dave_item = items[1]
    assert dave_item["peer"]["username"] == "dave"
    assert (dave_item["last_seq"], dave_item["read_seq"], dave_item["unread"]) == (2, 0, 2)
    assert items[2]["last_message"]["client_msg_id"] == "c1"

    # pages with a cursor cover the same list
    status, one = await alice.api.call("GET", "/api/v1/conversations?limit=2")
    assert [i["conversation_id"] for i in one["items"]] == [with_bob, with_dave]
    assert one["next_cursor"]
    status, two = await alice.api.call("GET", f"/api/v1/conversations?limit=2&cursor={one['next_cursor']}")
    assert [i["conversation_id"] for i in two["items"]] == [with_carol]
    assert two["next_cursor"] is None

    # new activity moves a conversation to the top
    chat.clock.advance(1)
    assert (await _post(chat, alice, with_carol, "c2", "back to carol"))[0] == 201
    status, page = await alice.api.call("GET", "/api/v1/conversations")
    assert [i["conversation_id"] for i in page["items"]] == [with_carol, with_bob, with_dave]
    assert page["items"][0]["unread"] == 0 and page["items"][0]["read_seq"] == 2

    # the peer's view
    status, page = await bob.api.call("GET", "/api/v1/conversations")
    [item] = page["items"]
    assert item["peer"]["id"] == alice.id and (item["read_seq"], item["unread"]) == (2, 0)

    http_error(await alice.api.call("GET", "/api/v1/conversations?limit=201"), 422, "validation_failed", "limit")
    http_error(await alice.api.call("GET", "/api/v1/conversations?cursor=%%%"), 400, "invalid_request", "cursor")
    http_error(await chat.api.call("GET", "/api/v1/conversations"), 401, "unauthorized")


async def test_patch_mutes_and_pins(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    cid = direct_id(alice, bob)
    assert (await _post(chat, bob, cid, "m1"))[0] == 201

    status, body = await alice.api.call("PATCH", f"/api/v1/conversations/{cid}", {"muted": True})
    assert status == 200, body
    assert (body["conversation_id"], body["muted"], body["pinned"]) == (cid, True, False)
    status, body = await alice.api.call("PATCH", f"/api/v1/conversations/{cid}", {"pinned": True})
    assert (body["muted"], body["pinned"]) == (True, True)
    status, page = await alice.api.call("GET", "/api/v1/conversations")
    assert (page["items"][0]["muted"], page["items"][0]["pinned"]) == (True, True)
    # flags are per member
    status, page = await bob.api.call("GET", "/api/v1/conversations")
    assert (page["items"][0]["muted"], page["items"][0]["pinned"]) == (False, False)
    status, body = await alice.api.call("PATCH", f"/api/v1/conversations/{cid}", {"muted": False, "pinned": False})
    assert (body["muted"], body["pinned"]) == (False, False)

    http_error(await alice.api.call("PATCH", f"/api/v1/conversations/{cid}", {"muted": "yes"}),
               422, "validation_failed", "muted")
    http_error(await carol.api.call("PATCH", f"/api/v1/conversations/{cid}", {"muted": True}), 404, "not_found")
    http_error(await alice.api.call("PATCH", "/api/v1/conversations/p:x:y", {"muted": True}), 404, "not_found")
    # a conversation of mine with no messages yet
    http_error(await alice.api.call("PATCH", f"/api/v1/conversations/{direct_id(alice, carol)}", {"muted": True}),
               404, "not_found")
