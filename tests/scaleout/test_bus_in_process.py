"""Routing over Redis between two nodes: messages, receipts, typing, presence, kicks."""

from __future__ import annotations

import asyncio
from typing import Any

from lucky_server.keys import CORE

from ..chat.conftest import direct_id
from ..conftest import Api
from ..social.conftest import make_world  # noqa: F401 - a fixture
from ..services import REDIS_URL, redis_prefix
from .conftest import TwoNodes


async def test_a_message_reaches_a_user_on_the_other_node_once(two_nodes: TwoNodes) -> None:
    one, two = two_nodes
    ann, bob = await one.user("ann"), await one.user("bob")
    ann_dev = await one.connect(ann)
    bob_dev = await two.connect(bob)
    await asyncio.sleep(0.2)  # presence entries travel over pub/sub
    sent = await ann_dev.send_text(bob.id, "hello across", "c1")
    got = await bob_dev.expect("message")
    assert got["message"]["body"] == {"text": "hello across"}
    assert got["message"]["seq"] == sent["message"]["seq"]
    await bob_dev.send({"type": "read", "conversation_id": direct_id(ann, bob), "seq": sent["message"]["seq"]})
    receipt = await ann_dev.expect("receipt")
    assert receipt["user_id"] == bob.id
    await bob_dev.send({"type": "typing", "conversation_id": direct_id(ann, bob)})
    assert (await ann_dev.expect("typing"))["user_id"] == bob.id
    assert [f for f in await bob_dev.barrier() if f["type"] == "message"] == []  # once, not twice


async def test_logout_on_one_node_kicks_the_socket_on_the_other_at_once(two_nodes: TwoNodes) -> None:
    one, two = two_nodes
    ann = await one.user("ann")
    dev = await two.connect(ann)
    status, _ = await ann.api.call("POST", "/api/v1/auth/logout")
    assert status == 204
    code, frames = await dev.closed(timeout=1.5)  # the feed's poll is 2 s: this is the bus
    assert any(f.get("type") == "kick" and f.get("reason") == "logout" for f in frames), frames
    status, _ = await two.api.__class__(two.client, ann.token).call("GET", "/api/v1/me")
    assert status == 401


async def test_a_group_message_is_one_publish_per_other_node_not_one_per_member(make_chat: Any) -> None:
    redis = {"url": REDIS_URL, "prefix": redis_prefix(), "lease_s": 3}
    nodes = [await make_chat(redis=redis) for _ in range(3)]
    owner = await nodes[0].user("owner")
    members = [await nodes[0].user(f"member{i}") for i in range(6)]  # two on each node
    status, body = await owner.api.call("POST", "/api/v1/groups", {
        "name": "spread", "member_ids": [m.id for m in members]})
    assert status == 201, body
    group_id = body["id"]
    sender = await nodes[0].connect(owner)
    devices = [await nodes[i % 3].connect(m) for i, m in enumerate(members)]
    await asyncio.sleep(0.3)  # presence entries travel
    for device in devices:  # the group's creation message, pushed before we measure
        await device.barrier()
    bus = nodes[0].client.server.app[CORE].bus
    before = bus.publishes
    sent = await sender.request({"type": "send", "group_id": group_id, "client_msg_id": "g1", "kind": "text",
                                 "body": {"text": "to all"}}, "sent")
    for device in devices:
        got = await device.expect("message")
        assert got["message"]["id"] == sent["message"]["id"]
    assert bus.publishes - before == 2  # nodes two and three, each once, for four remote members
    for device in devices:
        assert [f for f in await device.barrier() if f["type"] == "message"] == []


async def test_a_hundred_and_fifty_sockets_closing_at_once_leave_the_bus_up(make_world: Any) -> None:
    # Each closing socket changed its user's presence: redis-py's default pool raised "Too many
    # connections" past 100 and the node's bus stayed down (found by bench/cluster.py); and
    # handlers cancelled while waiting for Redis left their users in the presence hash.
    prefix = redis_prefix()
    world = await make_world(redis={"url": REDIS_URL, "prefix": prefix, "lease_s": 3},
                             chat={"max_sockets_per_ip": 0})
    people = await world.people(*(f"user{i:03}" for i in range(150)))
    devices = await asyncio.gather(*(world.connect(p) for p in people))
    core = world.client.server.app[CORE]
    presence = core.bus.client  # the bus's own client: the node's presence hash, as others read it
    key = f"{prefix}:presence:{core.bus.instance}"
    assert await presence.hlen(key) == 150
    await asyncio.gather(*(d.ws.close() for d in devices))
    for _ in range(100):
        if await presence.hlen(key) == 0:
            break
        await asyncio.sleep(0.05)
    assert await presence.hlen(key) == 0
    status, body = await Api(world.client).call("GET", "/readyz")
    assert (status, body["status"], body["bus"]["ok"]) == (200, "ready", True), body
