"""Job leases in Redis (`<prefix>:lock:job:<name>`): one run of a job at a time across nodes.

Mirrors tests/jobs/test_leases.py, with the lease in Redis instead of the database; the
records of runs stay in the database both nodes share.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lucky_server.clock import Clock
from lucky_server.jobs.leases import RedisJobLeases
from lucky_server.jobs.model import JobSpec
from lucky_server.jobs.runner import JobRunner
from lucky_server.jobs.scheduler import Scheduler
from lucky_server.jobs.service import JobService
from lucky_server.storage.stores.jobs import JobStore

from ..jobs.conftest import MakeCore, make_core  # noqa: F401 - a fixture
from ..services import REDIS_URL, PrivateRedis, redis_prefix


def _redis() -> dict[str, Any]:
    return {"url": REDIS_URL, "prefix": redis_prefix(), "lease_s": 3}


async def test_of_many_nodes_asking_at_once_exactly_one_gets_the_lease(make_core: MakeCore) -> None:
    redis = _redis()
    async with make_core(redis=redis) as one, make_core(redis=redis) as two:
        leases = [JobService.of(one).leases, JobService.of(two).leases]
        assert all(isinstance(lease, RedisJobLeases) for lease in leases)
        now = one.clock.now_ms()
        won = await asyncio.gather(*(leases[i % 2].acquire("cleanup.blobs", f"node-{i}:1:aa", now, 60_000)
                                     for i in range(12)))
        assert sum(won) == 1
        winner = f"node-{won.index(True)}:1:aa"
        assert await leases[1].held(now) == {"cleanup.blobs": winner}
        assert await leases[0].acquire("cleanup.blobs", winner, now, 60_000)  # the holder takes it again
        assert not await leases[0].acquire("cleanup.blobs", "node-x:1:bb", now, 60_000)
        assert not await leases[1].renew("cleanup.blobs", "node-x:1:bb", now + 60_000)  # not its lease
        await leases[1].release("cleanup.blobs", "node-x:1:bb")  # not its lease: nothing happens
        assert await leases[0].held(now) == {"cleanup.blobs": winner}
        await leases[1].release("cleanup.blobs", winner)
        assert await leases[0].held(now) == {}
        assert await leases[0].acquire("cleanup.blobs", "node-x:1:bb", now, 60_000)
        await leases[0].release("cleanup.blobs", "node-x:1:bb")
        # No job_leases row was written: the database is not where these leases live.
        assert await JobStore(one.db).held(now) == {}


async def test_a_lease_left_by_a_dead_node_is_taken_once_redis_expires_it(make_core: MakeCore) -> None:
    async with make_core(redis=_redis()) as core:
        leases = JobService.of(core).leases
        assert await leases.acquire("test.job", "dead-node:4242:0f0f", core.clock.now_ms(), 300)
        runner = JobRunner(core.db, core.clock, "node-b", leases)
        ran: list[int] = []
        spec = _job("test.job", lambda: ran.append(1))
        skipped = await runner.run(spec)
        assert (skipped.outcome, skipped.summary, ran) == ("skipped", "dead-node:4242:0f0f", [])
        while await leases.held(0):  # Redis's own TTL frees it (300 ms)
            await asyncio.sleep(0.05)
        result = await runner.run(spec)
        assert (result.outcome, result.summary, ran) == ("ok", "did it", [1])
        assert (await JobStore(core.db).records())["test.job"].last_node == "node-b"
        assert await leases.held(0) == {}  # released after the run


async def test_two_schedulers_on_one_redis_never_run_a_job_at_once(make_core: MakeCore) -> None:
    """Each scheduler fires the job every second; each run takes 1.3 s, longer than its 1 s
    lease, which it keeps by renewing in Redis: the other scheduler's firings are skipped."""
    redis = _redis()
    async with make_core(redis=redis) as one, make_core(redis=redis) as two:
        runs: list[tuple[str, float, float]] = []

        def job_for(node: str) -> JobSpec:
            async def body() -> None:
                started = time.monotonic()
                await asyncio.sleep(1.3)
                runs.append((node, started, time.monotonic()))
            return _job("test.exclusive", body, lease_s=1)

        schedulers = [Scheduler([job_for(node)], JobRunner(core.db, Clock(), node, JobService.of(core).leases),
                                shutdown_timeout_s=5)
                      for node, core in (("node-a", one), ("node-b", two))]
        try:
            for scheduler in schedulers:
                await scheduler.start()
            await asyncio.sleep(4.5)
        finally:
            for scheduler in schedulers:
                await scheduler.stop()
        record = (await JobStore(one.db).records())["test.exclusive"]
        assert len(runs) >= 2, runs
        ordered = sorted(runs, key=lambda run: run[1])
        for before, after in zip(ordered, ordered[1:]):
            assert after[1] >= before[2], f"two runs overlapped: {before} and {after}"
        assert record.runs == len(runs) and record.failures == 0 and record.last_outcome == "ok"


def _job(name: str, body: Any, *, lease_s: int = 300) -> JobSpec:
    async def run() -> str:
        result = body()
        if asyncio.iscoroutine(result):
            await result
        return "did it"

    return JobSpec(name, "every 1s", "a test job", run, lease_s=lease_s)


async def test_while_redis_is_down_a_job_is_skipped_with_one_warning_and_runs_once_it_is_back(
        make_core: MakeCore, tmp_path: Any, caplog: Any) -> None:
    redis = PrivateRedis(str(tmp_path))
    redis.start()
    try:
        async with make_core(redis={"url": redis.url, "prefix": "lucky", "lease_s": 3}) as core:
            runner = JobRunner(core.db, core.clock, "node-a", JobService.of(core).leases)
            ran: list[int] = []
            spec = _job("test.job", lambda: ran.append(1))
            redis.kill()
            results = [await runner.run(spec) for _ in range(3)]
            assert [r.outcome for r in results] == ["skipped"] * 3 and ran == []
            assert "Redis is unreachable" in results[0].summary
            warnings = [r for r in caplog.records if "test.job skipped" in r.getMessage()]
            assert len(warnings) == 1 and warnings[0].exc_info is None  # one line, no traceback
            redis.start()
            result = await runner.run(spec)
            assert (result.outcome, ran) == ("ok", [1])
    finally:
        redis.kill()
