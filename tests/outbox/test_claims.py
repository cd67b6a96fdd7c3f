"""Claims on both databases: two processes' services (each with its own Database pool on one
database) never get the same row at once; and what a node committed but never dispatched
(it died in between) is dispatched and pushed exactly once by another node's job.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from lucky_server.chat.model import ConversationRef
from lucky_server.chat.writer import PendingSend, SendWriter
from lucky_server.clock import FakeClock
from lucky_server.config import Config
from lucky_server.core import Core, open_core
from lucky_server.outbox.deliveries import DeliveryService
from lucky_server.outbox.service import OutboxService
from lucky_server.outbox.wiring import offline_push
from lucky_server.storage import Tx
from lucky_server.storage.stores.outbox import DeliveryStore, OutboxStore

from ..chat.conftest import Chat
from ..conftest import MakeConfig
from .conftest import push_section
from .receiver import Receiver
from .test_push import core_of, run_job_later

ROWS = 240


@asynccontextmanager
async def _cores(config: Config, clock: FakeClock, count: int) -> AsyncIterator[list[Core]]:
    async with AsyncExitStack() as stack:
        cores = [await stack.enter_async_context(open_core(config, clock=clock, apply_migrations=True,
                                                           worker_id=n)) for n in range(count)]
        yield cores


async def _fill(core: Core, now: int) -> None:
    async def write(tx: Tx) -> None:
        await OutboxStore(core.db).add(tx, [(n, "p:1:2") for n in range(1, ROWS + 1)], now, now)
        await DeliveryStore(core.db).add(tx, [(n, "push", f'{{"n": {n}}}') for n in range(1, ROWS + 1)], now)

    await core.db.transaction("fill", write)


async def test_two_processes_claiming_at_once_never_get_the_same_row(make_config: MakeConfig, clock: FakeClock) -> None:
    async with _cores(make_config(), clock, 2) as (first, second):
        await _fill(first, clock.now_ms())
        stores = [OutboxStore(first.db), OutboxStore(second.db), DeliveryStore(first.db), DeliveryStore(second.db)]
        # Many small claims at once, from both pools, on each table.
        claims = await asyncio.gather(*(stores[(n % 2) + 2 * (n // 40 % 2)].claim(clock.now_ms(), 60_000, 7)
                                        for n in range(160)))
        outbox = [row.key for n, got in enumerate(claims) if n // 40 % 2 == 0 for row in got]
        deliveries = [row.key for n, got in enumerate(claims) if n // 40 % 2 == 1 for row in got]
        assert sorted(outbox) == list(range(1, ROWS + 1)), "each outbox row claimed exactly once"
        assert sorted(deliveries) == list(range(1, ROWS + 1)), "each delivery claimed exactly once"
        assert all(row.attempts == 1 for got in claims for row in got)
        # Claimed rows stay claimed for the lease, then are due again (their claimer died).
        assert await stores[1].claim(clock.now_ms(), 60_000, 500) == []
        clock.advance(61)
        assert len(await stores[1].claim(clock.now_ms(), 60_000, 500)) == ROWS


class _Recorder:
    """A redispatch and a poster that count what they were given, yielding between calls."""

    def __init__(self) -> None:
        self.dispatched: Counter[int] = Counter()
        self.posted: Counter[bytes] = Counter()

    async def redispatch(self, message_id: int) -> None:
        self.dispatched[message_id] += 1
        await asyncio.sleep(0)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        self.posted[body] += 1
        await asyncio.sleep(0)
        return None

    async def close(self) -> None:
        return None

    async def nothing(self) -> None:
        return None


async def test_two_outbox_services_retrying_at_once_dispatch_and_post_each_row_once(
        make_config: MakeConfig, clock: FakeClock) -> None:
    config = make_config(push={"webhook_url": "http://127.0.0.1:9/unused", "max_in_flight": 5})
    recorder = _Recorder()
    async with _cores(config, clock, 2) as cores:
        await _fill(cores[0], clock.now_ms())
        services = [OutboxService(core.db, config.outbox, clock, random.Random(n), recorder.redispatch,
                                  recorder.nothing, DeliveryService(core.db, config.push, clock, random.Random(n),
                                                                    recorder))
                    for n, core in enumerate(cores)]
        reports = await asyncio.gather(*(s.retry_due() for s in services for _ in range(3)))
        assert sum(r.dispatched for r in reports) == ROWS
        assert sum(r.push.sent for r in reports) == ROWS
        assert set(recorder.dispatched) == set(range(1, ROWS + 1)) and set(recorder.dispatched.values()) == {1}
        assert len(recorder.posted) == ROWS and set(recorder.posted.values()) == {1}
        assert [(s.kind, s.pending, s.failed) for s in await services[1].status()] == [
            ("message", 0, 0), ("push", 0, 0)]


async def test_what_a_dead_node_committed_but_never_dispatched_is_dispatched_and_pushed_once(
        push_chat: Chat, receiver: Receiver, make_config: MakeConfig) -> None:
    alice, bob = await push_chat.user("alice"), await push_chat.user("bob")
    config = make_config(push=push_section(receiver))
    # Another node on the same database stores a message while bob has no device there, and
    # dies between its commit and its dispatch: its writer never dispatches, and its push
    # sender never runs (no node sees bob online, so a notification is planned).
    async with open_core(config, clock=push_chat.clock, worker_id=7) as dead:
        _, hooks = offline_push(config, dead.db, dead.clock, dead.ids, _NobodyOnline(), dead.chat.audience.members)
        writer = SendWriter(dead.db, dead.ids, dead.clock, 16, on_committed=lambda batch: [],
                            outbox_grace_ms=config.outbox.grace_s * 1000, hooks=hooks)
        writer.start()
        ref = ConversationRef.direct(int(alice.id), int(bob.id))
        pending = PendingSend(ref, int(alice.id), "text", {"text": "from the other node"}, "c1", None, ref.user_ids)
        writer.enqueue(pending)
        message, _ = await pending.future
        await writer.stop()

    phone = await push_chat.connect(bob)  # bob connects to this node after the other one died
    assert receiver.hits == []
    assert "dispatched 1 message" in await run_job_later(push_chat)
    frame = await phone.expect("message")
    assert frame["message"]["id"] == str(message.id)
    await run_job_later(push_chat)
    assert len(receiver.hits) == 1 and receiver.hits[0].answer == "200"
    assert receiver.hits[0].json["message_id"] == str(message.id)
    assert receiver.hits[0].json["user_id"] == bob.id
    assert {s.kind: (s.pending, s.failed) for s in await core_of(push_chat).outbox.status()} == {
        "message": (0, 0), "push": (0, 0)}


class _NobodyOnline:
    def is_online(self, user_id: int) -> bool:
        return False
