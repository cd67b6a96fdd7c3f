"""Three real `lucky serve` nodes on one PostgreSQL schema, one Redis prefix and one S3 bucket:
users on different nodes chat, type, read and sign out as if there were one server.

The nodes are started once for the module; no test here kills anything (test_faults.py does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from ..cli.process import Served
from ..services import redis_prefix
from .clients import (Device, direct_id, history, meet, read_messages, register, register_many,
                      seqs)
from .cluster import LEASE_S, Cluster, cluster_on, readyz, shared_redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_on(Path(tmp_path_factory.mktemp("cluster")), shared_redis(), redis_prefix()) as running:
        running.start(3)
        yield running


@pytest.fixture
def nodes(cluster: Cluster) -> list[Served]:
    return cluster.nodes


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_every_node_is_ready_on_the_shared_backends(cluster: Cluster, nodes: list[Served]) -> None:
    # Nobody is connected yet, so no node has published a presence: each counts the others
    # from their leases, within a few lease periods (not the full re-read every 20 heartbeats).
    cluster.wait_nodes(3, timeout=4 * float(LEASE_S))
    for node in nodes:
        status, body = readyz(node)
        assert status == 200 and body["status"] == "ready", body
        assert body["checks"]["storage"]["ok"] and body["checks"]["redis"]["ok"], body
        assert body["node"].startswith(f"n{nodes.index(node) + 1}/"), body


async def test_one_to_one_across_nodes_every_message_once_and_in_order(
        nodes: list[Served], http: aiohttp.ClientSession) -> None:
    ann, bob = await register_many(http, nodes, 2, "direct")
    ann_phone, bob_phone = await ann.connect(nodes[0]), await bob.connect(nodes[1])
    ann_laptop = await ann.connect(nodes[2], await ann.sign_in(nodes[2], "laptop"))
    conversation = direct_id(ann, bob)
    await meet(conversation, ann_phone, {bob.user_id: bob_phone})
    await meet(conversation, bob_phone, {ann.user_id: ann_phone})

    count = 20
    sent_ids, sent_seqs = [], []
    for i in range(count):  # both ways, interleaved: ann from node 1, bob from node 2
        device, to = (ann_phone, bob) if i % 2 == 0 else (bob_phone, ann)
        sent = await device.send_text(to.user_id, f"m{i}", f"c{i}")
        sent_ids.append(sent["message"]["id"])
        sent_seqs.append(sent["message"]["seq"])

    # What each device must get: every message it did not send itself, once, in order.
    expected = {"ann's laptop on n3": (ann_laptop, sent_ids, []),
                "bob on n2": (bob_phone, sent_ids[0::2], sent_seqs[1::2]),
                "ann's phone on n1": (ann_phone, sent_ids[1::2], sent_seqs[0::2])}
    for name, (device, ids, own) in expected.items():
        try:
            inbox = await read_messages(device, conversation, len(ids), own=own)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        assert inbox.ids == [str(i) for i in ids], name
        assert seqs(inbox.frames) == sorted(seqs(inbox.frames)), name
        assert [f for f in await device.barrier() if f["type"] == "message"] == [], name  # nothing more


async def test_a_group_spread_over_three_nodes_gets_every_message_once_in_order(
        nodes: list[Served], http: aiohttp.ClientSession) -> None:
    owner, *members = await register_many(http, nodes, 7, "group")
    status, group = await owner.call(nodes[0], "POST", "/api/v1/groups",
                                     {"name": "spread", "member_ids": [m.user_id for m in members]})
    assert status == 201, group
    conversation = f"g:{group['id']}"
    sender = await owner.connect(nodes[0])
    devices = {m.user_id: await m.connect(nodes[i % 3]) for i, m in enumerate(members)}  # two per node
    await meet(conversation, sender, devices)
    start = int((await history(owner, nodes[1], conversation))[-1]["seq"])  # the group's own notes

    count = 15
    sent_ids = []
    for i in range(count):
        frame = {"type": "send", "group_id": group["id"], "client_msg_id": f"g{i}", "kind": "text",
                 "body": {"text": f"to all {i}"}}
        sent_ids.append(str((await sender.request(frame, "sent"))["message"]["id"]))
    for user_id, device in devices.items():
        inbox = await read_messages(device, conversation, count, after=start)
        assert inbox.ids == sent_ids, f"member {user_id}"
        assert seqs(inbox.frames) == sorted(seqs(inbox.frames))
        assert [f for f in await device.barrier() if f["type"] == "message"] == []


async def test_two_nodes_writing_to_one_conversation_share_one_gapless_seq(
        nodes: list[Served], http: aiohttp.ClientSession) -> None:
    owner, left, right, reader = await register_many(http, nodes, 4, "seq")
    status, group = await owner.call(nodes[0], "POST", "/api/v1/groups", {
        "name": "two writers", "member_ids": [left.user_id, right.user_id, reader.user_id]})
    assert status == 201, group
    conversation = f"g:{group['id']}"
    watcher = await reader.connect(nodes[2])
    writers = [await left.connect(nodes[0]), await right.connect(nodes[1])]
    await meet(conversation, watcher, {left.user_id: writers[0], right.user_id: writers[1]})
    start = int((await history(owner, nodes[2], conversation))[-1]["seq"])  # the group's own notes

    burst = 40

    async def write(device: Device, tag: str) -> list[int]:
        # Pipelined, as a busy client sends: every `send` out before the first `sent` is read.
        for i in range(burst):
            await device.send({"type": "send", "group_id": group["id"], "client_msg_id": f"{tag}{i}", "kind": "text",
                               "body": {"text": f"{tag} {i}"}, "id": f"{tag}{i}"})
        got: list[int] = []
        while len(got) < burst:
            frame = await device.recv()
            if frame["type"] == "sent":
                got.append(int(frame["message"]["seq"]))
        return got

    left_seqs, right_seqs = await asyncio.gather(write(writers[0], "l"), write(writers[1], "r"))
    expected = list(range(start + 1, start + 2 * burst + 1))
    assert sorted(left_seqs + right_seqs) == expected  # no seq given twice, none skipped
    assert left_seqs == sorted(left_seqs) and right_seqs == sorted(right_seqs)  # each writer's order kept

    inbox = await read_messages(watcher, conversation, 2 * burst, after=start)
    assert seqs(inbox.frames) == expected  # the reader on a third node: once each, in seq order
    stored = await history(reader, nodes[0], conversation)
    assert seqs(stored) == list(range(1, start + 2 * burst + 1))


async def test_typing_and_read_receipts_cross_nodes(nodes: list[Served], http: aiohttp.ClientSession) -> None:
    ann, bob = await register_many(http, nodes, 2, "typing")
    ann_dev, bob_dev = await ann.connect(nodes[0]), await bob.connect(nodes[1])
    conversation = direct_id(ann, bob)
    # bob types on n2 and ann sees it on n1; then the other way.
    assert await meet(conversation, ann_dev, {bob.user_id: bob_dev}) == [
        {"type": "typing", "conversation_id": conversation, "user_id": bob.user_id}]
    assert await meet(conversation, bob_dev, {ann.user_id: ann_dev}) == [
        {"type": "typing", "conversation_id": conversation, "user_id": ann.user_id}]

    sent = await ann_dev.send_text(bob.user_id, "did you read this?", "r1")
    got = await read_messages(bob_dev, conversation, 1)
    await bob_dev.send({"type": "read", "conversation_id": conversation, "seq": got.frames[0]["seq"]})
    receipt = await ann_dev.expect("receipt")
    assert receipt == {"type": "receipt", "conversation_id": conversation, "user_id": bob.user_id,
                       "seq": sent["message"]["seq"]}


async def test_logout_on_one_node_refuses_the_token_and_kicks_the_socket_on_another(
        cluster: Cluster, nodes: list[Served], http: aiohttp.ClientSession) -> None:
    # The revocation poll is off on every node of this cluster (NODE_ENV): only the bus can do it.
    assert cluster.env["LUCKY_AUTH__REVOCATION_POLL_S"] == "0"
    ann = await register(http, nodes[0], "logout")
    on_b = await ann.connect(nodes[1])
    assert (await ann.call(nodes[1], "GET", "/api/v1/me"))[0] == 200
    status, _ = await ann.call(nodes[0], "POST", "/api/v1/auth/logout")
    assert status == 204
    assert (await ann.call(nodes[1], "GET", "/api/v1/me"))[0] == 401  # at once on node B
    assert (await ann.call(nodes[2], "GET", "/api/v1/me"))[0] == 401
    code, frames = await on_b.closed(timeout=1.0)
    assert {"type": "kick", "reason": "logout"} in frames, frames
    assert code == 4001, (code, frames)
