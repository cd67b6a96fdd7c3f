"""Job leases: one run of a job at a time on one database, whichever process or node asks.

Two schedulers, each with a Database pool of its own (as two nodes have), run the same job
every second on one database; the job records when it ran, and no two runs overlap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from lucky_server.clock import Clock, FakeClock
from lucky_server.config import ConfigError
from lucky_server.core import Core, database_for
from lucky_server.jobs.model import JobSpec
from lucky_server.jobs.runner import JobRunner
from lucky_server.jobs.scheduler import Scheduler
from lucky_server.storage import Database
from lucky_server.storage.stores.jobs import JobStore

from .conftest import MakeCore


async def _second_pool(core: Core) -> Database:
    db = database_for(core.config)
    await db.open()
    return db


async def test_of_many_processes_asking_at_once_exactly_one_gets_the_lease(make_core: MakeCore,
                                                                           backend: str) -> None:
    async with make_core() as core:
        other = await _second_pool(core)
        try:
            stores = [JobStore(core.db), JobStore(other)]
            now = core.clock.now_ms()
            won = await asyncio.gather(*(stores[i % 2].acquire("cleanup.blobs", f"node-{i}:1:aa", now, 60_000)
                                         for i in range(12)))
            assert sum(won) == 1
            winner = f"node-{won.index(True)}:1:aa"
            assert await stores[1].held(now) == {"cleanup.blobs": winner}
            # the holder may take it again (a renewal by upsert); nobody else can, until it expires
            assert await stores[0].acquire("cleanup.blobs", winner, now, 60_000)
            assert not await stores[0].acquire("cleanup.blobs", "node-x:1:bb", now + 59_000, 60_000)
            assert await stores[1].acquire("cleanup.blobs", "node-x:1:bb", now + 60_001, 60_000)
        finally:
            await other.close()


def _job(name: str, body: Callable[[], object] | None = None, *, schedule: str = "every 1s", lease_s: int = 300,
         summary: str = "did it") -> JobSpec:
    async def run() -> str:
        if body is not None:
            result = body()
            if asyncio.iscoroutine(result):
                await result
        return summary

    return JobSpec(name, schedule, "a test job", run, lease_s=lease_s)


async def test_a_lease_left_by_a_dead_holder_is_taken_once_it_expires(make_core: MakeCore, clock: FakeClock,
                                                                      backend: str) -> None:
    async with make_core() as core:
        store = JobStore(core.db)
        # a node took the lease for 30 s and died
        assert await store.acquire("test.job", "dead-node:4242:0f0f", clock.now_ms(), 30_000)
        runner = JobRunner(core.db, clock, "node-b")
        ran: list[int] = []
        spec = _job("test.job", lambda: ran.append(1))
        skipped = await runner.run(spec)
        assert (skipped.outcome, skipped.summary, ran) == ("skipped", "dead-node:4242:0f0f", [])
        assert await store.records() == {}  # a skipped run records nothing
        clock.advance(29)
        assert (await runner.run(spec)).outcome == "skipped"
        clock.advance(2)
        result = await runner.run(spec)
        assert (result.outcome, result.summary, ran) == ("ok", "did it", [1])
        assert (await store.records())["test.job"].last_node == "node-b"
        assert await store.held(clock.now_ms()) == {}  # released after the run


async def test_two_schedulers_on_one_database_never_run_a_job_at_once(make_core: MakeCore, backend: str) -> None:
    """Each scheduler fires the job every second; each run takes 1.3 s, longer than its 1 s
    lease, which it keeps by renewing: the other scheduler's firings meanwhile are skipped."""
    async with make_core() as core:
        other = await _second_pool(core)
        runs: list[tuple[str, float, float]] = []

        def job_for(node: str) -> JobSpec:
            async def body() -> None:
                started = time.monotonic()
                await asyncio.sleep(1.3)
                runs.append((node, started, time.monotonic()))
            return _job("test.exclusive", body, lease_s=1)

        schedulers = [Scheduler([job_for(node)], JobRunner(db, Clock(), node), shutdown_timeout_s=5)
                      for node, db in (("node-a", core.db), ("node-b", other))]
        try:
            for scheduler in schedulers:
                await scheduler.start()
            await asyncio.sleep(4.5)
        finally:
            for scheduler in schedulers:
                await scheduler.stop()
            record = (await JobStore(core.db).records())["test.exclusive"]
            await other.close()
        assert len(runs) >= 2, runs
        ordered = sorted(runs, key=lambda run: run[1])
        for before, after in zip(ordered, ordered[1:]):
            assert after[1] >= before[2], f"two runs overlapped: {before} and {after}"
        assert record.runs == len(runs) and record.failures == 0 and record.last_outcome == "ok"
        assert record.last_node in {"node-a", "node-b"}


async def test_stopping_cancels_a_run_past_the_shutdown_timeout_and_records_it(make_core: MakeCore,
                                                                               backend: str) -> None:
    async with make_core() as core:
        started = asyncio.Event()

        async def forever() -> None:
            started.set()
            await asyncio.sleep(3600)

        scheduler = Scheduler([_job("test.slow", forever)], JobRunner(core.db, Clock(), "node-a"),
                              shutdown_timeout_s=0.2)
        await scheduler.start()
        await asyncio.wait_for(started.wait(), 10)
        await scheduler.stop()
        store = JobStore(core.db)
        record = (await store.records())["test.slow"]
        assert record.last_outcome == "failed" and "cancelled" in record.last_summary
        assert await store.held(Clock().now_ms()) == {}


async def test_a_run_that_ends_within_the_shutdown_timeout_finishes(make_core: MakeCore, backend: str) -> None:
    async with make_core() as core:
        started = asyncio.Event()

        async def short() -> None:
            started.set()
            await asyncio.sleep(0.3)

        scheduler = Scheduler([_job("test.short", short, summary="finished")],
                              JobRunner(core.db, Clock(), "node-a"), shutdown_timeout_s=10)
        await scheduler.start()
        await asyncio.wait_for(started.wait(), 10)
        await scheduler.stop()
        record = (await JobStore(core.db).records())["test.short"]
        assert (record.last_outcome, record.last_summary, record.runs) == ("ok", "finished", 1)


@pytest.mark.parametrize("schedule", ["every day", "every 0s", "61 * * * *", "* * * *", ""])
def test_a_bad_schedule_stops_the_start_naming_its_key(schedule: str) -> None:
    spec = JobSpec("cleanup.sessions", schedule, "x", lambda: asyncio.sleep(0, "x"),
                   config_key="jobs.cleanup_schedule")
    with pytest.raises(ConfigError) as caught:
        Scheduler([spec], JobRunner.__new__(JobRunner), shutdown_timeout_s=1)
    assert "jobs.cleanup_schedule" in str(caught.value)
