"""Calls whose parties are on different nodes: the inviting node owns the call; frames from
the other node are forwarded to it and answered; its pushes reach devices on the other node."""

from __future__ import annotations

import asyncio
from typing import Any

from lucky_server.keys import CORE

from ..chat.conftest import Chat, Device, MakeChat, User, direct_id
from ..calls.conftest import eventually
from ..conftest import Api
from ..services import REDIS_URL, redis_prefix


async def _two_nodes(make_chat: MakeChat) -> tuple[Chat, Chat]:
    redis = {"url": REDIS_URL, "prefix": redis_prefix(), "lease_s": 3}
    return await make_chat(redis=redis), await make_chat(redis=redis)


async def _on(node: Chat, user: User, device_id: str) -> Device:
    """A device of the user signed in and connected on `node`."""
    return await node.connect(User(Api(node.client, user.token, user.api.user), user.username), device_id)


async def _reply(device: Device, frame: dict[str, Any], kind: str) -> dict[str, Any]:
    frame_id = device.fresh_id("c")
    await device.send({**frame, "id": frame_id})
    answer = await device.expect(kind)
    assert answer.get("id") == frame_id, answer
    return answer


async def _answered(one: Chat, two: Chat) -> tuple[User, User, Device, Device, str]:
    """Ann on node one calls Bob on node two, who answers: (ann, bob, a1, b1, call id)."""
    ann, bob = await one.user("ann"), await one.user("bob")
    a1, b1 = await _on(one, ann, "a1"), await _on(two, bob, "b1")
    await asyncio.sleep(0.2)  # presence entries travel over pub/sub
    call_id = (await _reply(a1, {"type": "call.invite", "to": bob.id, "media": "audio"}, "call.invited"))["call_id"]
    await b1.expect("call.ring")
    await _reply(b1, {"type": "call.accept", "call_id": call_id}, "ok")
    await a1.expect("call.accept")
    return ann, bob, a1, b1, call_id


async def _until(device: Device, done: Any) -> list[dict[str, Any]]:
    """Frames read until one satisfies `done` (that one last)."""
    frames = [await device.recv()]
    while not done(frames[-1]):
        frames.append(await device.recv())
    return frames


async def _until_ok(device: Device, frame_id: str) -> list[dict[str, Any]]:
    return await _until(device, lambda f: f["type"] == "ok" and f.get("id") == frame_id)


async def _ended_messages(user: User, conversation_id: str) -> list[dict[str, Any]]:
    status, body = await user.api.call("GET", f"/api/v1/conversations/{conversation_id}/messages")
    assert status == 200, body
    return [m for m in body["items"] if m["kind"] == "system" and m["body"].get("event") == "call.ended"]


async def test_a_call_between_users_on_two_nodes_runs_from_ring_to_hangup(make_chat: MakeChat) -> None:
    one, two = await _two_nodes(make_chat)
    ann, bob = await one.user("ann"), await one.user("bob")
    a1 = await _on(one, ann, "a1")
    b1 = await _on(two, bob, "b1")
    await asyncio.sleep(0.2)  # presence entries travel over pub/sub

    invited = await _reply(a1, {"type": "call.invite", "to": bob.id, "media": "video"}, "call.invited")
    call_id = invited["call_id"]
    ring = await b1.expect("call.ring")
    assert (ring["call_id"], ring["from"], ring["conversation_id"]) == (call_id, ann.id, direct_id(ann, bob))

    await a1.send({"type": "call.signal", "call_id": call_id, "to": bob.id, "data": {"sdp": "offer"}})
    offer = await b1.expect("call.signal")
    assert (offer["from"], offer["from_device"], offer["data"]) == (ann.id, "a1", {"sdp": "offer"})

    await _reply(b1, {"type": "call.accept", "call_id": call_id}, "ok")  # forwarded to node one, answered
    assert await a1.expect("call.accept") == {"type": "call.accept", "call_id": call_id, "user_id": bob.id,
                                              "device_id": "b1"}
    await b1.send({"type": "call.signal", "call_id": call_id, "to": ann.id, "data": {"sdp": "answer"}})
    assert (await a1.expect("call.signal"))["data"] == {"sdp": "answer"}
    await a1.send({"type": "call.signal", "call_id": call_id, "to": bob.id, "data": {"candidate": "c"}})
    assert (await b1.expect("call.signal"))["data"] == {"candidate": "c"}

    await b1.send({"type": "call.hangup", "call_id": call_id, "id": "bye"})
    hangup = await a1.expect("call.hangup")
    assert (hangup["user_id"], hangup["device_id"], hangup["ended"]) == (bob.id, "b1", True)
    # b1 gets its ok and the call's message, in either order (the message comes by the bus).
    frames = {f["type"]: f for f in (await b1.recv(), await b1.recv())}
    assert frames["ok"]["id"] == "bye"
    for message in (frames["message"]["message"], (await a1.expect("message"))["message"]):
        assert message["kind"] == "system" and message["body"]["event"] == "call.ended", message
    assert len(await _ended_messages(ann, direct_id(ann, bob))) == 1  # stored once
    # A second hangup, from either node, is a quiet ok and stores nothing more.
    await _reply(b1, {"type": "call.hangup", "call_id": call_id}, "ok")
    await _reply(a1, {"type": "call.hangup", "call_id": call_id}, "ok")
    assert len(await _ended_messages(bob, direct_id(ann, bob))) == 1


async def test_a_user_in_a_call_owned_by_another_node_is_busy(make_chat: MakeChat) -> None:
    one, two = await _two_nodes(make_chat)
    ann, bob, _a1, b1, _call_id = await _answered(one, two)
    cat = await one.user("cat")
    c1 = await _on(two, cat, "c1")

    # Cat, on node two, calls Bob: his call runs on node one, and node two knows he is busy.
    other = (await _reply(c1, {"type": "call.invite", "to": bob.id, "media": "audio"}, "call.invited"))["call_id"]
    reject = await c1.expect("call.reject")
    assert (reject["call_id"], reject["user_id"], reject["reason"]) == (other, bob.id, "busy")
    # And Ann, whose call node two does not run, cannot start a second one there either.
    a2 = await _on(two, ann, "a2")
    await a2.barrier()
    error = await _reply(a2, {"type": "call.invite", "to": cat.id, "media": "audio"}, "error")
    assert error["code"] == "forbidden", error
    await b1.barrier()  # nothing rang for Bob
    assert [f for f in await b1.barrier() if f["type"] == "call.ring"] == []


async def test_a_stranger_on_the_other_node_is_refused_by_the_calls_owner(make_chat: MakeChat) -> None:
    one, two = await _two_nodes(make_chat)
    ann, bob, eve = await one.user("ann"), await one.user("bob"), await one.user("eve")
    a1, b1, e1 = await _on(one, ann, "a1"), await _on(two, bob, "b1"), await _on(two, eve, "e1")
    await asyncio.sleep(0.2)
    call_id = (await _reply(a1, {"type": "call.invite", "to": bob.id, "media": "audio"}, "call.invited"))["call_id"]
    await b1.expect("call.ring")
    for frame in ({"type": "call.accept", "call_id": call_id},
                  {"type": "call.signal", "call_id": call_id, "to": ann.id, "data": {"sdp": "x"}}):
        error = await _reply(e1, frame, "error")
        assert error["code"] == "forbidden", error
    error = await _reply(e1, {"type": "call.accept", "call_id": "no-such-call"}, "error")
    assert error["code"] == "not_found", error
    assert [f for f in await a1.barrier() if f["type"].startswith("call.")] == []  # Ann heard nothing of Eve
    # The call's state lives on node one only.
    assert two.client.server.app[CORE].calls.calls.get(call_id) is None
    assert one.client.server.app[CORE].calls.calls.get(call_id) is not None


async def test_a_party_gone_from_the_other_node_is_hung_up_after_the_grace(make_chat: MakeChat) -> None:
    one, two = await _two_nodes(make_chat)
    _ann, bob, a1, b1, call_id = await _answered(one, two)

    owner = one.client.server.app[CORE].calls
    await b1.ws.close()  # node two forwards the device's leaving to node one, which owns the call
    await eventually(lambda: int(bob.id) in owner.calls.get(call_id).away)  # type: ignore[union-attr]
    one.clock.advance(31)  # past calls.grace_s (30 s)
    await owner.sweep()
    hangup = await a1.expect("call.hangup")
    assert (hangup["user_id"], hangup["reason"], hangup["ended"]) == (bob.id, "disconnected", True)


async def test_a_group_call_rings_and_is_joined_across_nodes_one_at_a_time(make_chat: MakeChat) -> None:
    one, two = await _two_nodes(make_chat)
    ann, bob, cat = await one.user("ann"), await one.user("bob"), await one.user("cat")
    status, group = await ann.api.call("POST", "/api/v1/groups", {"name": "g", "member_ids": [bob.id, cat.id]})
    assert status == 201, group
    a1, b1, c1 = await _on(one, ann, "a1"), await _on(two, bob, "b1"), await _on(two, cat, "c1")
    await asyncio.sleep(0.2)
    for device in (a1, b1, c1):
        await device.barrier()  # the group's creation message
    call_id = (await _reply(a1, {"type": "call.invite", "group_id": group["id"], "media": "audio"},
                            "call.invited"))["call_id"]
    for device in (b1, c1):
        assert (await device.expect("call.ring"))["group_id"] == group["id"]
    await _reply(b1, {"type": "call.accept", "call_id": call_id}, "ok")
    assert (await a1.expect("call.accept"))["user_id"] == bob.id

    # One call per group, whichever node is asked.
    error = await _reply(c1, {"type": "call.invite", "group_id": group["id"], "media": "audio"}, "error")
    assert error["code"] == "forbidden" and error["details"]["call_id"] == call_id, error
    await _reply(c1, {"type": "call.accept", "call_id": call_id}, "ok")  # joining it instead works
    assert (await a1.expect("call.accept"))["user_id"] == cat.id
    assert (await b1.expect("call.accept"))["user_id"] == cat.id

    for name, device in (("a", a1), ("b", b1)):  # the second hangup leaves one: the call ends
        await device.send({"type": "call.hangup", "call_id": call_id, "id": f"bye-{name}"})
        assert any(f.get("id") == f"bye-{name}" and f["type"] == "ok" for f in await _until_ok(device, f"bye-{name}"))
    frames = await _until(c1, lambda f: f["type"] == "call.hangup" and f["ended"])
    assert frames[-1]["user_id"] == bob.id
    ended = await _until(c1, lambda f: f["type"] == "message")
    assert ended[-1]["message"]["body"]["event"] == "call.ended"
    # Ended: the group may call again, through the other node.
    again = await _reply(c1, {"type": "call.invite", "group_id": group["id"], "media": "audio"}, "call.invited")
    assert again["call_id"] != call_id
