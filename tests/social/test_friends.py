"""Friends and blocks (PROTOCOL.md, "Friends and blocks"): requests, friendships, blocks,
`chat.require_friendship`, and `presence` frames to friends."""

from __future__ import annotations

from typing import Any

from .conftest import Device, MakeWorld, Person, World

REQUESTS = "/api/v1/friends/requests"


def direct(a: Person, b: Person) -> str:
    low, high = sorted((a.id, b.id))
    return f"p:{low}:{high}"


def dm(cmid: str, words: str = "hi") -> dict[str, Any]:
    return {"client_msg_id": cmid, "kind": "text", "body": {"text": words}}


async def befriend(a: Person, b: Person) -> None:
    status, request = await a.call("POST", REQUESTS, {"user_id": b.id})
    assert status == 201, request
    status, body = await b.call("POST", f"{REQUESTS}/{request['id']}/accept")
    assert status == 200, body


async def ws_send(device: Device, to: Person, cmid: str) -> dict[str, Any]:
    return await device.request({"type": "send", "to": to.id, "client_msg_id": cmid, "kind": "text",
                                 "body": {"text": "hello"}})


async def test_request_accept_list_delete(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    status, request = await alice.call("POST", REQUESTS, {"user_id": bob.id, "message": "it's me"})
    assert status == 201, request
    assert request["from_user"]["id"] == alice.id and request["to_user"]["id"] == bob.id
    assert request["message"] == "it's me" and request["state"] == "pending"
    assert isinstance(request["created_at"], int)

    # Asking again answers the pending request, not a second one.
    status, again = await alice.call("POST", REQUESTS, {"user_id": bob.id})
    assert (status, again["id"]) == (200, request["id"])

    status, incoming = await bob.call("GET", f"{REQUESTS}?direction=in")
    assert status == 200 and [r["id"] for r in incoming["items"]] == [request["id"]]
    status, outgoing = await alice.call("GET", f"{REQUESTS}?direction=out")
    assert status == 200 and [r["id"] for r in outgoing["items"]] == [request["id"]]
    assert (await alice.call("GET", f"{REQUESTS}?direction=in"))[1]["items"] == []

    status, accepted = await bob.call("POST", f"{REQUESTS}/{request['id']}/accept")
    assert status == 200 and accepted["state"] == "accepted" and accepted["id"] == request["id"]

    for me, other in ((alice, bob), (bob, alice)):
        status, friends = await me.call("GET", "/api/v1/friends")
        assert status == 200, friends
        assert [f["user"]["id"] for f in friends["items"]] == [other.id]
        assert isinstance(friends["items"][0]["since"], int)
        assert friends["next_cursor"] is None

    status, body = await alice.call("POST", REQUESTS, {"user_id": bob.id})
    assert (status, body["error"]["code"]) == (409, "conflict")

    status, _ = await bob.call("DELETE", f"/api/v1/friends/{alice.id}")
    assert status == 204
    for me in (alice, bob):
        assert (await me.call("GET", "/api/v1/friends"))[1]["items"] == []
    status, body = await bob.call("DELETE", f"/api/v1/friends/{alice.id}")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_reject_then_ask_again(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    status, request = await alice.call("POST", REQUESTS, {"user_id": bob.id})
    assert status == 201
    status, rejected = await bob.call("POST", f"{REQUESTS}/{request['id']}/reject")
    assert status == 200 and rejected["state"] == "rejected"
    assert (await alice.call("GET", "/api/v1/friends"))[1]["items"] == []
    # Contract silent: the lists keep answered requests, each with its state.
    assert [(r["id"], r["state"]) for r in (await bob.call("GET", f"{REQUESTS}?direction=in"))[1]["items"]] == \
        [(request["id"], "rejected")]
    status, fresh = await alice.call("POST", REQUESTS, {"user_id": bob.id})
    assert status == 201 and fresh["id"] != request["id"] and fresh["state"] == "pending"


async def test_request_errors(world: World) -> None:
    (alice,) = await world.people("alice")
    status, body = await alice.call("POST", REQUESTS, {"user_id": alice.id})
    assert (status, body["error"]["code"], body["error"]["details"]["field"]) == (422, "validation_failed", "user_id")
    status, body = await alice.call("POST", REQUESTS, {"user_id": "12345"})
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await alice.call("POST", REQUESTS, {"user_id": "abc"})
    assert (status, body["error"]["code"]) == (422, "validation_failed")
    status, body = await alice.call("POST", REQUESTS, {})
    assert (status, body["error"]["code"]) == (422, "validation_failed")
    status, body = await alice.call("POST", REQUESTS, {"user_id": alice.id, "message": "x" * 1000})
    assert status == 422
    status, body = await alice.call("GET", f"{REQUESTS}?direction=sideways")
    assert (status, body["error"]["details"]["field"]) == (422, "direction")
    status, body = await alice.call("POST", f"{REQUESTS}/999/accept")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_a_reverse_pending_request_is_accepted(world: World) -> None:
    """Current behaviour: asking someone who already asked you accepts their request (200)."""
    alice, bob = await world.people("alice", "bob")
    status, request = await alice.call("POST", REQUESTS, {"user_id": bob.id})
    assert status == 201
    status, answer = await bob.call("POST", REQUESTS, {"user_id": alice.id})
    assert status == 200, answer
    assert answer["id"] == request["id"] and answer["state"] == "accepted"
    assert answer["from_user"]["id"] == alice.id
    assert [f["user"]["id"] for f in (await bob.call("GET", "/api/v1/friends"))[1]["items"]] == [alice.id]
    assert [(r["id"], r["state"]) for r in (await alice.call("GET", f"{REQUESTS}?direction=out"))[1]["items"]] == \
        [(request["id"], "accepted")]
    assert (await bob.call("GET", f"{REQUESTS}?direction=out"))[1]["items"] == []  # no second request


async def test_requests_and_friends_page_newest_first(world: World) -> None:
    star, *fans = await world.people("star", "fan1", "fan2", "fan3", "fan4", "fan5")
    ids = []
    for fan in fans:
        status, request = await fan.call("POST", REQUESTS, {"user_id": star.id})
        assert status == 201
        ids.append(request["id"])

    async def pages(person: Person, path: str) -> list[list[str]]:
        seen, cursor = [], None
        while True:
            status, body = await person.call("GET", path + (f"&cursor={cursor}" if cursor else ""))
            assert status == 200, body
            seen.append([item["id"] if "id" in item else item["user"]["id"] for item in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    assert await pages(star, f"{REQUESTS}?direction=in&limit=2") == [ids[::-1][0:2], ids[::-1][2:4], ids[::-1][4:]]
    for request_id in ids:
        status, _ = await star.call("POST", f"{REQUESTS}/{request_id}/accept")
        assert status == 200
    friend_pages = await pages(star, "/api/v1/friends?limit=2")
    assert [len(p) for p in friend_pages] == [2, 2, 1]
    assert sorted(i for p in friend_pages for i in p) == sorted(f.id for f in fans)
    # Out: the fans' side, each with its one request.
    assert await pages(fans[0], f"{REQUESTS}?direction=out&limit=2") == [[ids[0]]]
    status, body = await star.call("GET", f"{REQUESTS}?direction=in&cursor=!!!")
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, body = await star.call("GET", "/api/v1/friends?limit=201")
    assert (status, body["error"]["code"]) == (422, "validation_failed")


async def test_blocks(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    cid = direct(alice, bob)
    alice_ws = await world.connect(alice)
    status, _ = await alice.call("POST", f"/api/v1/conversations/{cid}/messages", dm("before"))
    assert status == 201
    # A send over the socket first, so the block must reach a pair already checked and remembered.
    assert (await ws_send(alice_ws, bob, "ws-before"))["type"] == "sent"

    status, _ = await bob.call("PUT", f"/api/v1/blocks/{alice.id}")
    assert status == 204
    status, blocks = await bob.call("GET", "/api/v1/blocks")
    assert [u["id"] for u in blocks["items"]] == [alice.id]

    reply = await ws_send(alice_ws, bob, "ws-blocked")
    assert reply["type"] == "error" and reply["code"] == "blocked", reply
    status, body = await alice.call("POST", f"/api/v1/conversations/{cid}/messages", dm("http-blocked"))
    assert (status, body["error"]["code"]) == (403, "blocked")
    status, body = await alice.call("POST", REQUESTS, {"user_id": bob.id})
    assert (status, body["error"]["code"]) == (403, "blocked")
    # Blocking is one way: bob may still write to alice.
    status, _ = await bob.call("POST", f"/api/v1/conversations/{cid}/messages", dm("bob-speaks"))
    assert status == 201
    status, body = await bob.call("PUT", f"/api/v1/blocks/{bob.id}")
    assert status == 422

    status, _ = await bob.call("DELETE", f"/api/v1/blocks/{alice.id}")
    assert status == 204
    reply = await ws_send(alice_ws, bob, "ws-after")
    assert reply["type"] == "sent", reply
    assert (await bob.call("GET", "/api/v1/blocks"))[1]["items"] == []


async def test_require_friendship(make_world: MakeWorld) -> None:
    world = await make_world(chat={"require_friendship": True})
    alice, bob = await world.people("alice", "bob")
    cid = direct(alice, bob)
    alice_ws = await world.connect(alice)

    status, body = await alice.call("POST", f"/api/v1/conversations/{cid}/messages", dm("stranger"))
    assert (status, body["error"]["code"]) == (403, "forbidden")
    reply = await ws_send(alice_ws, bob, "ws-stranger")
    assert (reply["type"], reply["code"]) == ("error", "forbidden")

    await befriend(alice, bob)
    status, _ = await alice.call("POST", f"/api/v1/conversations/{cid}/messages", dm("friend"))
    assert status == 201
    assert (await ws_send(alice_ws, bob, "ws-friend"))["type"] == "sent"

    status, _ = await alice.call("DELETE", f"/api/v1/friends/{bob.id}")
    assert status == 204
    status, body = await bob.call("POST", f"/api/v1/conversations/{cid}/messages", dm("ex-friend"))
    assert (status, body["error"]["code"]) == (403, "forbidden")
    reply = await ws_send(alice_ws, bob, "ws-ex-friend")  # sent to this peer before: not remembered as allowed
    assert (reply["type"], reply["code"]) == ("error", "forbidden")


async def test_presence_on_first_connect_and_last_disconnect(world: World) -> None:
    alice, bob, carol = await world.people("alice", "bob", "carol")
    await befriend(alice, bob)
    bob_ws = await world.connect(bob)
    carol_ws = await world.connect(carol)  # not alice's friend: hears nothing of her

    first = await world.connect(alice)
    assert await bob_ws.expect("presence") == {"type": "presence", "user_id": alice.id, "online": True}
    second = await world.connect(alice, "laptop")
    await first.close()
    await bob_ws.nothing_pending()  # a second device came and the first went: still online
    await second.close()
    # The next frame bob gets, whenever the server has seen the last socket end.
    assert await bob_ws.expect("presence") == {"type": "presence", "user_id": alice.id, "online": False}
    await carol_ws.nothing_pending()

    # And the other way: bob's last device leaving and a new first one, seen by alice.
    alice_ws = await world.connect(alice)
    assert await bob_ws.expect("presence") == {"type": "presence", "user_id": alice.id, "online": True}
    await bob_ws.close()
    assert await alice_ws.expect("presence") == {"type": "presence", "user_id": bob.id, "online": False}
    await world.connect(bob, "phone")
    assert await alice_ws.expect("presence") == {"type": "presence", "user_id": bob.id, "online": True}
