"""Faults in a real cluster: Redis SIGKILLed and restarted mid-burst, one node SIGKILLed mid-burst.

Each test starts a cluster of its own (it breaks it). What is checked is what users see: every
send answered, and afterwards every recipient holding every message exactly once (deduplicated
by message id, as a client does: a redispatch from the outbox may push one twice), with the
conversation's seqs 1..N, live and through `sync` and history.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import web

from lucky_server.bus.keys import RedisKeys

from ..cli.process import Served
from ..services import PrivateRedis, REDIS_URL, free_port, redis_prefix
from .clients import Client, Device, Inbox, direct_id, history, meet, read_messages, register_many, seqs, sync_all
from .cluster import LEASE_S, cluster_on, readyz, shared_redis


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def until(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    """Poll `check` (a readyz, a Redis key) until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


def status_of(node: Served) -> str:
    return str(readyz(node)[1]["status"])


def nodes_seen(node: Served) -> int:
    return int(readyz(node)[1]["bus"]["nodes"])


class Burst:
    """One device sending numbered texts to a user, one after another, until told to stop;
    `sent` is every `sent` reply, in order. Sends are paced a little so that faults land
    in the middle of the burst rather than after it."""

    def __init__(self, device: Device, to: Client, tag: str) -> None:
        self.device, self.to, self.tag = device, to, tag
        self.sent: list[dict[str, Any]] = []
        self.stop = asyncio.Event()

    async def run(self, at_most: int) -> None:
        for i in range(at_most):
            if self.stop.is_set():
                return
            answer = await self.device.send_text(self.to.user_id, f"{self.tag} {i}", f"{self.tag}{i}")
            self.sent.append(answer["message"])
            await asyncio.sleep(0.02)

    async def reaches(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.sent) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.tag}: only {len(self.sent)} of {count} sends answered")
            await asyncio.sleep(0.02)

    @property
    def ids(self) -> list[str]:
        return [str(m["id"]) for m in self.sent]


async def test_redis_killed_and_restarted_mid_burst_loses_and_duplicates_nothing(
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    private = PrivateRedis(str(tmp_path))
    private.start()
    try:
        with cluster_on(tmp_path, private.url, "lucky") as cluster:
            one, two = cluster.start(2)
            ann, bob = await register_many(http, [one, two], 2, "outage")
            conversation = direct_id(ann, bob)
            sender = await ann.connect(one)
            bob_remote = await bob.connect(two)  # gets ann's messages over Redis
            bob_local = await bob.connect(one, await bob.sign_in(one, "tablet"))  # on ann's node
            await meet(conversation, sender, {bob.user_id: bob_remote})

            burst = Burst(sender, bob, "o")
            total = 60
            sending = asyncio.create_task(burst.run(total))
            await burst.reaches(15)
            await asyncio.to_thread(private.kill)
            await until("both nodes say degraded", lambda: status_of(one) == status_of(two) == "degraded")
            body = readyz(one)[1]
            assert body["bus"]["ok"] is False and body["checks"]["redis"]["ok"] is False, body
            at_kill = len(burst.sent)
            await burst.reaches(at_kill + 15)  # sends go on being stored and answered while Redis is down
            await asyncio.to_thread(private.start)
            await until("both nodes ready again", lambda: status_of(one) == status_of(two) == "ready")
            await sending
            assert len(burst.sent) == total
            assert seqs(burst.sent) == list(range(1, total + 1))

            # Every device of bob's ends with every message once: the one on ann's node live, the
            # one across Redis from live pushes and the outbox's redispatch after the outage.
            for name, device in {"bob on n1": bob_local, "bob on n2": bob_remote}.items():
                try:
                    inbox = await read_messages(device, conversation, total, timeout=45)
                except AssertionError as exc:
                    raise AssertionError(f"{name}: {exc}") from None
                assert set(inbox.unique()) == set(burst.ids), name
                assert sorted(seqs(inbox.unique().values())) == list(range(1, total + 1)), name
                # What sync gives a reconnecting client: each message once.
                synced = [m for m in await sync_all(device) if m["conversation_id"] == conversation]
                assert [str(m["id"]) for m in synced] == burst.ids, name
            stored = await history(bob, two, conversation)
            assert [str(m["id"]) for m in stored] == burst.ids
    finally:
        private.kill()


class PushReceiver:
    """The offline-push webhook: an HTTP server of the test's own that keeps every body posted."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/push"
        self._runner: web.AppRunner | None = None

    async def _push(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(status=204)

    async def __aenter__(self) -> PushReceiver:
        app = web.Application()
        app.router.add_post("/push", self._push)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def pushed(self, user_id: str, message_id: str, timeout: float = 20) -> None:
        await until(f"an offline push of {message_id} to {user_id}",
                    lambda: any(b["user_id"] == user_id and b["message_id"] == message_id for b in self.bodies),
                    timeout)


async def test_a_node_killed_mid_burst_its_users_reconnect_elsewhere_and_sync(
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    prefix = redis_prefix()
    async with PushReceiver() as webhook:
        await node_killed_mid_burst(tmp_path, http, prefix, webhook)


async def node_killed_mid_burst(tmp_path: Path, http: aiohttp.ClientSession, prefix: str,
                                webhook: PushReceiver) -> None:
    with cluster_on(tmp_path, shared_redis(), prefix, LUCKY_PUSH__WEBHOOK_URL=webhook.url,
                    LUCKY_PUSH__WEBHOOK_SECRET="cluster push secret") as cluster:
        one, two, victim = cluster.start(3)
        victim_instance = readyz(victim)[1]["node"]
        ann, bob, cat, eve = await register_many(http, [one, two], 4, "killed")
        ann_dev = await ann.connect(one)  # sends to bob
        bob_dev = await bob.connect(victim)  # receives, on the node that dies
        cat_dev = await cat.connect(victim)  # sends to ann from the node that dies
        eve_dev = await eve.connect(victim)  # on the node that dies, and does not come back
        status, asked = await eve.call(one, "POST", "/api/v1/friends/requests", {"user_id": ann.user_id})
        assert status == 201, asked  # ann and eve are friends: ann hears when eve goes offline
        status, body = await ann.call(two, "POST", f"/api/v1/friends/requests/{asked['id']}/accept")
        assert status == 200, body
        await meet(direct_id(ann, bob), ann_dev, {bob.user_id: bob_dev})
        await meet(direct_id(ann, cat), ann_dev, {cat.user_id: cat_dev})
        await meet(direct_id(ann, eve), ann_dev, {eve.user_id: eve_dev})
        while_online = (await ann_dev.send_text(eve.user_id, "eve is online", "e0"))["message"]
        await asyncio.to_thread(cluster.wait_nodes, 3)
        keys = RedisKeys(prefix)
        shared = redis.Redis.from_url(REDIS_URL)
        assert shared.hexists(keys.presence(victim_instance), bob.user_id)

        to_bob, from_cat = Burst(ann_dev, bob, "a"), Burst(cat_dev, ann, "c")
        total = 40
        bob_inbox = Inbox()
        reading = asyncio.create_task(read_messages(bob_dev, direct_id(ann, bob), total, bob_inbox, timeout=60))
        sending = [asyncio.create_task(to_bob.run(total)), asyncio.create_task(from_cat.run(total))]
        await to_bob.reaches(10)
        await from_cat.reaches(10)
        victim.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        # cat's burst ends with the socket; bob's reader too (what it had is kept, as a client does).
        results = await asyncio.gather(sending[1], reading, return_exceptions=True)
        assert all(isinstance(r, (AssertionError, ConnectionError)) for r in results), results  # closed
        await sending[0]  # ann, on a live node, is never held up
        assert seqs(to_bob.sent) == list(range(1, total + 1))

        # bob reconnects to another node and syncs from the last seq it saw.
        bob_again = await bob.connect(two)
        cursor = max(seqs(bob_inbox.frames), default=0)
        for message in await sync_all(bob_again, {direct_id(ann, bob): cursor}):
            bob_inbox.add(message)
        assert set(bob_inbox.unique()) == set(to_bob.ids)  # nothing lost
        assert sorted(seqs(bob_inbox.unique().values())) == list(range(1, total + 1))

        # cat reconnects and sends again what got no `sent` (same client_msg_id): stored once.
        cat_again = await cat.connect(one)
        answered = len(from_cat.sent)
        for i in range(answered, total):
            from_cat.sent.append((await cat_again.send_text(ann.user_id, f"c {i}", f"c{i}"))["message"])
        stored = await history(ann, two, direct_id(ann, cat))
        assert [m["client_msg_id"] for m in stored] == [f"c{i}" for i in range(total)]  # none twice
        assert seqs(stored) == list(range(1, total + 1))
        ann_inbox = await read_messages(ann_dev, direct_id(ann, cat), total, timeout=30)
        assert set(ann_inbox.unique()) == {str(m["id"]) for m in stored}

        # After the lease (2 s) the other nodes no longer count it, and its presence is gone: at
        # the first prune after its heartbeat expired (prunes run once a lease), so within a few
        # leases of the kill, not at the full re-read of the replica (20 heartbeats).
        await until("the live nodes count two", lambda: nodes_seen(one) == nodes_seen(two) == 2,
                    timeout=max(0.0, killed_at + 4 * float(LEASE_S) - time.monotonic()))
        assert not shared.exists(keys.presence(victim_instance))
        assert not shared.sismember(keys.nodes, victim_instance)
        shared.close()

        # eve was only on the dead node: to both live nodes she is offline now, so a message to
        # her, sent through either, is an offline push; the one sent while she was online was not.
        via_one = (await ann_dev.send_text(eve.user_id, "eve, are you there?", "e1"))["message"]
        status, via_two = await ann.call(two, "POST", f"/api/v1/conversations/{direct_id(ann, eve)}/messages",
                                         {"client_msg_id": "e2", "kind": "text", "body": {"text": "eve?"}})
        assert status == 201, via_two
        await webhook.pushed(eve.user_id, str(via_one["id"]))
        await webhook.pushed(eve.user_id, str(via_two["id"]))

        # The dead node cannot say that eve left; the live node that pruned it says so, once.
        presence: list[dict[str, Any]] = []

        async def eve_offline() -> None:
            while not any(p["online"] is False for p in presence):
                frame = await ann_dev.recv(timeout=10)
                if frame["type"] == "presence" and frame["user_id"] == eve.user_id:
                    presence.append(frame)

        await asyncio.wait_for(eve_offline(), 15)
        assert [p["online"] for p in presence] == [False]
        assert not [b for b in webhook.bodies if b["message_id"] == str(while_online["id"])]
