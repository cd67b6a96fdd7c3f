"""Snowflake worker ids leased in Redis: no two live processes make ids as the same worker."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from lucky_server.bus import RedisKeys
from lucky_server.bus.redis_bus import connect
from lucky_server.bus.workers import OFFLINE_WORKER, WorkerLease
from lucky_server.clock import Clock
from lucky_server.ids import MAX_WORKER

from ..jobs.conftest import MakeCore, make_core  # noqa: F401 - a fixture
from ..services import REDIS_URL, free_port, redis_prefix

LEASE_BITS = 12  # the sequence bits below the worker id (server/ids.py)


def _worker_of(snowflake_id: int) -> int:
    return (snowflake_id >> LEASE_BITS) & MAX_WORKER


async def test_processes_on_one_redis_make_ids_as_different_workers(make_core: MakeCore) -> None:
    prefix = redis_prefix()
    async with AsyncExitStack() as stack:
        cores = [await stack.enter_async_context(make_core(redis={"url": REDIS_URL, "prefix": prefix}))
                 for _ in range(6)]
        workers = [_worker_of(core.ids.next_id()) for core in cores]
        assert len(set(workers)) == 6 and OFFLINE_WORKER not in workers
        client = connect(REDIS_URL)
        held = {w: await client.get(RedisKeys(prefix).worker(w)) for w in workers}
        assert all(holder is not None for holder in held.values())
    # closed: every lease given back
    assert [await client.get(RedisKeys(prefix).worker(w)) for w in workers] == [None] * 6
    await client.aclose()


async def test_a_lease_taken_by_another_process_while_redis_was_away_moves_the_node_to_a_free_id() -> None:
    keys = RedisKeys(redis_prefix())
    client = connect(REDIS_URL)
    try:
        lease = WorkerLease(keys, "n1/aaaaaa", 5_000)
        ids = await lease.snowflake(client, Clock())
        first = ids.worker_id
        # Redis restarted empty and another process took the id before this one renewed it.
        await client.set(keys.worker(first), "n2/bbbbbb", px=5_000)
        await lease.renew(client)
        assert ids.worker_id != first and _worker_of(ids.next_id()) == ids.worker_id
        assert await client.get(keys.worker(ids.worker_id)) == b"n1/aaaaaa"
        assert await client.get(keys.worker(first)) == b"n2/bbbbbb"  # the other's, untouched
        # a lease that merely expired (Redis restarted empty, nobody took it) is taken again
        await client.delete(keys.worker(ids.worker_id))
        kept = ids.worker_id
        await lease.renew(client)
        assert ids.worker_id == kept and await client.get(keys.worker(kept)) == b"n1/aaaaaa"
        await lease.release(client)
        assert await client.get(keys.worker(kept)) is None
    finally:
        await client.aclose()


async def test_a_cli_run_without_redis_makes_ids_as_the_offline_worker(caplog: Any) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        ids = await WorkerLease(RedisKeys("lucky"), "cli/cccccc", 5_000).snowflake(client, Clock())
    finally:
        await client.aclose()
    assert ids.worker_id == OFFLINE_WORKER == _worker_of(ids.next_id())
    assert any("offline id" in r.getMessage() for r in caplog.records)
