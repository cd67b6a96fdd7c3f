"""Routing over Redis between two nodes: messages, receipts, typing, presence, kicks."""

from __future__ import annotations

import asyncio

from ..chat.conftest import direct_id
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
