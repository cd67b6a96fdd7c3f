"""Group calls end to end: ring every member, join and leave while it runs, the cap."""

from __future__ import annotations

from ..social.conftest import MakeWorld, World, gcid
from .conftest import SFU, devices, invite, ok, refused, system_message


async def test_a_group_call_with_three_members(make_world: MakeWorld) -> None:
    world: World = await make_world(calls={"sfu_url": SFU})
    alice, bob, carol, dave = await world.people("alice", "bob", "carol", "dave")
    gid = await world.group(alice, [bob, carol])
    a1, b1, c1 = [(await devices(world, p, d))[0] for p, d in ((alice, "a1"), (bob, "b1"), (carol, "c1"))]
    (d1,) = await devices(world, dave, "d1")

    reply = await a1.request({"type": "call.invite", "group_id": gid, "media": "video"})
    assert reply["type"] == "call.invited" and reply["sfu_url"] == SFU, reply
    call_id = reply["call_id"]
    for ringing in (b1, c1):
        assert await ringing.expect("call.ring") == {
            "type": "call.ring", "call_id": call_id, "from": alice.id, "media": "video",
            "conversation_id": gcid(gid), "group_id": gid, "sfu_url": SFU, "timeout_s": 45}
    # One call per group: a second invite names the running one.
    second = await refused(b1, {"type": "call.invite", "group_id": gid, "media": "audio"}, "forbidden")
    assert second["details"] == {"call_id": call_id}
    await refused(d1, {"type": "call.invite", "group_id": gid, "media": "audio"}, "forbidden")  # not a member
    await refused(d1, {"type": "call.accept", "call_id": call_id}, "forbidden")

    await ok(b1, {"type": "call.accept", "call_id": call_id})
    assert (await a1.expect("call.accept"))["user_id"] == bob.id
    await c1.nothing_pending()  # carol still rings, and may join while the call runs
    await ok(c1, {"type": "call.accept", "call_id": call_id})
    for device in (a1, b1):
        assert (await device.expect("call.accept"))["user_id"] == carol.id

    # Signals between any two participants, to the device in the call only.
    await b1.send({"type": "call.signal", "call_id": call_id, "to": carol.id, "data": {"sdp": "b>c"}})
    assert (await c1.expect("call.signal"))["from"] == bob.id
    await refused(d1, {"type": "call.signal", "call_id": call_id, "to": carol.id, "data": {}}, "forbidden")
    await a1.nothing_pending()

    world.clock.advance(20)
    await ok(c1, {"type": "call.hangup", "call_id": call_id})  # carol leaves; two remain
    for device in (a1, b1):
        assert await device.expect("call.hangup") == {"type": "call.hangup", "call_id": call_id,
                                                      "user_id": carol.id, "device_id": "c1",
                                                      "reason": "hangup", "ended": False}
    await refused(c1, {"type": "call.signal", "call_id": call_id, "to": bob.id, "data": {}}, "forbidden")

    world.clock.advance(10)
    await ok(a1, {"type": "call.hangup", "call_id": call_id})  # fewer than two remain: over
    assert (await b1.expect("call.hangup"))["ended"] is True
    for device in (a1, b1, c1):
        message = await system_message(device, "call.ended")
        assert message["conversation_id"] == gcid(gid)
        assert message["body"] == {"event": "call.ended", "actor_id": alice.id, "call_id": call_id,
                                   "media": "video", "duration_s": 30}
    await d1.nothing_pending()


async def test_a_group_call_is_capped(make_world: MakeWorld) -> None:
    world: World = await make_world(calls={"max_participants": 2})
    alice, bob, carol = await world.people("alice", "bob", "carol")
    gid = await world.group(alice, [bob, carol])
    a1, b1, c1 = [(await devices(world, p, d))[0] for p, d in ((alice, "a1"), (bob, "b1"), (carol, "c1"))]
    call_id = await invite(a1, group_id=gid)
    for ringing in (b1, c1):
        await ringing.expect("call.ring")
    await ok(b1, {"type": "call.accept", "call_id": call_id})
    full = await refused(c1, {"type": "call.accept", "call_id": call_id}, "forbidden")
    assert "full" in full["message"]
    await ok(c1, {"type": "call.reject", "call_id": call_id})  # carol declines instead: the call goes on
    assert (await a1.expect("call.accept"))["user_id"] == bob.id
    assert (await a1.expect("call.reject"))["user_id"] == carol.id
    assert (await b1.expect("call.reject"))["user_id"] == carol.id
