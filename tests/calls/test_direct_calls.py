"""One-to-one calls end to end: real sockets, a real server, both databases."""

from __future__ import annotations

from typing import Any

from ..social.conftest import MakeWorld, Person, World
from .conftest import calls_of, devices, eventually, invite, ok, refused, system_message


def direct(a: Person, b: Person) -> str:
    low, high = sorted((a.id, b.id))
    return f"p:{low}:{high}"


async def last_message(person: Person, cid: str) -> dict[str, Any]:
    status, body = await person.call("GET", f"/api/v1/conversations/{cid}/messages")
    assert status == 200, body
    return dict(body["items"][-1])


async def test_a_full_call_between_two_users_with_two_devices_each(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    a1, a2 = await devices(world, alice, "a1", "a2")
    b1, b2 = await devices(world, bob, "b1", "b2")

    call_id = await invite(a1, to=bob.id, media="video")
    for ringing in (b1, b2):  # every device of the callee rings
        assert await ringing.expect("call.ring") == {
            "type": "call.ring", "call_id": call_id, "from": alice.id, "media": "video",
            "conversation_id": direct(alice, bob), "timeout_s": 45}
    await a2.nothing_pending()

    # Before an answer the caller's offer reaches every ringing device.
    await a1.send({"type": "call.signal", "call_id": call_id, "to": bob.id, "data": {"sdp": "offer"}})
    for ringing in (b1, b2):
        assert await ringing.expect("call.signal") == {
            "type": "call.signal", "call_id": call_id, "from": alice.id, "from_device": "a1",
            "data": {"sdp": "offer"}}

    await ok(b1, {"type": "call.accept", "call_id": call_id})
    accepted = {"type": "call.accept", "call_id": call_id, "user_id": bob.id, "device_id": "b1"}
    assert await a1.expect("call.accept") == accepted
    assert await b2.expect("call.accept") == accepted  # b2 stops ringing
    await refused(b2, {"type": "call.accept", "call_id": call_id}, "forbidden")  # too late: answered on b1

    # From now on signals reach the accepting device only, both ways.
    await b1.send({"type": "call.signal", "call_id": call_id, "to": alice.id, "data": {"sdp": "answer"}})
    assert (await a1.expect("call.signal"))["data"] == {"sdp": "answer"}
    await a1.send({"type": "call.signal", "call_id": call_id, "to": bob.id, "data": {"candidate": "c"}})
    assert (await b1.expect("call.signal"))["data"] == {"candidate": "c"}
    for quiet in (a2, b2):
        await quiet.nothing_pending()

    world.clock.advance(75)
    await ok(b1, {"type": "call.hangup", "call_id": call_id})  # b1's message frame waits in its backlog
    hangup = {"type": "call.hangup", "call_id": call_id, "user_id": bob.id, "device_id": "b1",
              "reason": "hangup", "ended": True}
    assert await a1.expect("call.hangup") == hangup
    assert await b2.expect("call.hangup") == hangup
    for device in (a1, a2, b1, b2):
        message = await system_message(device, "call.ended")
        assert message["body"] == {"event": "call.ended", "actor_id": bob.id, "call_id": call_id,
                                   "media": "video", "target_ids": [bob.id], "duration_s": 75}
        assert message["sender_id"] == bob.id
    # Alice hanging up at the same moment is no error, and stores nothing more.
    await ok(a1, {"type": "call.hangup", "call_id": call_id})
    await a1.nothing_pending()
    await b1.nothing_pending()

    assert (await last_message(alice, direct(alice, bob)))["body"]["duration_s"] == 75
    synced = await b2.request({"type": "sync", "cursors": {}})
    assert [m["body"]["event"] for m in synced["messages"]] == ["call.ended"]


async def test_an_unanswered_call_is_missed_after_the_timeout(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    (a1,) = await devices(world, alice, "a1")
    call_id = await invite(a1, to=bob.id)  # bob is offline: nothing rings, the call waits all the same
    world.clock.advance(44)
    await calls_of(world).sweep()
    await a1.nothing_pending()

    world.clock.advance(1)
    await calls_of(world).sweep()
    assert await a1.expect("call.cancel") == {"type": "call.cancel", "call_id": call_id, "user_id": alice.id,
                                              "reason": "timeout"}
    assert (await system_message(a1, "call.missed"))["body"]["reason"] == "timeout"
    await refused(a1, {"type": "call.cancel", "call_id": "nope"}, "not_found")

    (b1,) = await devices(world, bob, "b1")  # bob learns of it by sync
    synced = await b1.request({"type": "sync", "cursors": {}})
    assert [(m["kind"], m["body"]["event"], m["body"]["call_id"]) for m in synced["messages"]] == [
        ("system", "call.missed", call_id)]


async def test_reject_and_cancel(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    (a1,) = await devices(world, alice, "a1")
    b1, b2 = await devices(world, bob, "b1", "b2")

    call_id = await invite(a1, to=bob.id)
    for device in (b1, b2):
        await device.expect("call.ring")
    await ok(b2, {"type": "call.reject", "call_id": call_id})
    rejected = {"type": "call.reject", "call_id": call_id, "user_id": bob.id, "device_id": "b2"}
    assert await a1.expect("call.reject") == rejected
    assert await b1.expect("call.reject") == rejected
    for device in (a1, b1, b2):
        assert (await system_message(device, "call.rejected"))["sender_id"] == bob.id

    second = await invite(a1, to=bob.id)
    for device in (b1, b2):
        await device.expect("call.ring")
    await ok(a1, {"type": "call.cancel", "call_id": second})
    for device in (b1, b2):
        assert await device.expect("call.cancel") == {"type": "call.cancel", "call_id": second,
                                                      "user_id": alice.id, "reason": "cancelled"}
    for device in (a1, b1, b2):
        assert (await system_message(device, "call.missed"))["body"]["reason"] == "cancelled"
    # An accept racing the cancel finds the call over.
    await refused(b1, {"type": "call.accept", "call_id": second}, "not_found")


async def test_a_callee_in_another_call_is_busy(world: World) -> None:
    alice, bob, carol = await world.people("alice", "bob", "carol")
    (a1,), (b1,), (c1,) = [await devices(world, p, d) for p, d in ((alice, "a1"), (bob, "b1"), (carol, "c1"))]
    call_id = await invite(a1, to=bob.id)
    await b1.expect("call.ring")
    await ok(b1, {"type": "call.accept", "call_id": call_id})
    await a1.expect("call.accept")

    busy = await invite(c1, to=bob.id)
    assert await c1.expect("call.reject") == {"type": "call.reject", "call_id": busy, "user_id": bob.id,
                                              "reason": "busy"}
    message = await system_message(c1, "call.missed")
    assert message["body"]["reason"] == "busy" and message["conversation_id"] == direct(bob, carol)
    assert (await system_message(b1, "call.missed"))["body"]["call_id"] == busy  # no ring, a missed call
    await refused(a1, {"type": "call.invite", "to": carol.id, "media": "audio"}, "forbidden")  # alice is in a call
    await a1.nothing_pending()


async def test_a_third_user_cannot_take_part(world: World) -> None:
    alice, bob, mallory = await world.people("alice", "bob", "mallory")
    (a1,) = await devices(world, alice, "a1")
    b1, b2 = await devices(world, bob, "b1", "b2")
    (m1,) = await devices(world, mallory, "m1")
    call_id = await invite(a1, to=bob.id)
    await b1.expect("call.ring")
    await b2.expect("call.ring")
    await ok(b1, {"type": "call.accept", "call_id": call_id})
    await a1.expect("call.accept")
    await b2.expect("call.accept")

    for to in (alice.id, bob.id, mallory.id):
        await refused(m1, {"type": "call.signal", "call_id": call_id, "to": to, "data": {"sdp": "evil"}}, "forbidden")
    for kind in ("call.accept", "call.reject", "call.cancel", "call.hangup"):
        await refused(m1, {"type": kind, "call_id": call_id}, "forbidden")
    # Nor may a party's device that is not in the call, nor may a party signal an outsider.
    await refused(b2, {"type": "call.signal", "call_id": call_id, "to": alice.id, "data": {}}, "forbidden")
    await refused(a1, {"type": "call.signal", "call_id": call_id, "to": mallory.id, "data": {}}, "forbidden")
    for device in (a1, b1, b2):
        await device.nothing_pending()
    call = calls_of(world).calls.get(call_id)
    assert call is not None and call.status == "active"


async def test_who_may_be_called(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    (a1,) = await devices(world, alice, "a1")
    await refused(a1, {"type": "call.invite", "to": alice.id, "media": "audio"}, "validation_failed")
    await refused(a1, {"type": "call.invite", "to": "99999", "media": "audio"}, "not_found")
    await refused(a1, {"type": "call.invite", "to": bob.id, "media": "smell"}, "validation_failed")
    await refused(a1, {"type": "call.invite", "media": "audio"}, "validation_failed")
    await refused(a1, {"type": "call.invite", "to": bob.id, "media": "audio", "call_id": "no spaces"},
                  "validation_failed")
    await refused(a1, {"type": "call.signal", "call_id": "x", "to": bob.id, "data": "not an object"},
                  "validation_failed")
    status, _ = await bob.call("PUT", f"/api/v1/blocks/{alice.id}")
    assert status == 204
    await refused(a1, {"type": "call.invite", "to": bob.id, "media": "audio"}, "blocked")
    assert len(calls_of(world).calls) == 0


async def test_a_party_gone_past_the_grace_ends_the_call(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    (a1,) = await devices(world, alice, "a1")
    (b1,) = await devices(world, bob, "b1")
    call_id = await invite(a1, to=bob.id)
    await b1.expect("call.ring")
    await ok(b1, {"type": "call.accept", "call_id": call_id})
    await a1.expect("call.accept")
    service = calls_of(world)

    def away() -> bool:
        call = service.calls.get(call_id)
        return call is not None and int(bob.id) in call.away

    # Back within the grace, on the same device: the call goes on.
    await b1.close()
    await eventually(away)
    (b1,) = await devices(world, bob, "b1")
    await eventually(lambda: not away())
    world.clock.advance(30)
    await service.sweep()
    await a1.nothing_pending()

    await b1.close()
    await eventually(away)
    world.clock.advance(29)
    await service.sweep()
    await a1.nothing_pending()
    world.clock.advance(1)
    await service.sweep()
    assert await a1.expect("call.hangup") == {"type": "call.hangup", "call_id": call_id, "user_id": bob.id,
                                              "device_id": "b1", "reason": "disconnected", "ended": True}
    assert (await system_message(a1, "call.ended"))["body"]["duration_s"] == 60


async def test_a_repeated_invite_is_the_same_call(world: World) -> None:
    alice, bob, carol = await world.people("alice", "bob", "carol")
    (a1,) = await devices(world, alice, "a1")
    (b1,) = await devices(world, bob, "b1")
    (c1,) = await devices(world, carol, "c1")
    # A client that lost the reply sends its invite again: one call, one ring.
    assert await invite(a1, to=bob.id, call_id="alice-1") == "alice-1"
    assert await invite(a1, to=bob.id, call_id="alice-1") == "alice-1"
    assert (await b1.expect("call.ring"))["call_id"] == "alice-1"
    await b1.nothing_pending()
    taken = await refused(c1, {"type": "call.invite", "to": bob.id, "media": "audio", "call_id": "alice-1"},
                          "validation_failed")
    assert taken["details"]["field"] == "call_id"
    assert len(calls_of(world).calls) == 1


async def test_a_server_that_requires_friendship_requires_it_for_calls(make_world: MakeWorld) -> None:
    world = await make_world(chat={"require_friendship": True})
    alice, bob = await world.people("alice", "bob")
    (a1,) = await devices(world, alice, "a1")
    await refused(a1, {"type": "call.invite", "to": bob.id, "media": "video"}, "forbidden")
    status, _ = await alice.call("POST", "/api/v1/friends/requests", {"user_id": bob.id})
    assert status == 201
    status, _ = await bob.call("POST", "/api/v1/friends/requests", {"user_id": alice.id})  # accepts alice's
    assert status == 200
    await invite(a1, to=bob.id, media="video")
