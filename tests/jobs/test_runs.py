"""job_runs after successes and failures, and what `lucky doctor` makes of them, on both databases."""

from __future__ import annotations

from lucky_server.clock import FakeClock
from lucky_server.jobs.model import JobSpec
from lucky_server.jobs.runner import JobRunner
from lucky_server.jobs.service import job_warnings
from lucky_server.storage.stores.jobs import JobStore

from .conftest import MakeCore

DAY_MS = 86_400_000


class Flaky:
    """A job that fails while `failing` is set, with the error a real one would raise."""

    def __init__(self) -> None:
        self.failing = False
        self.done = 0

    async def run(self) -> str:
        if self.failing:
            raise ConnectionError("the blob store did not answer")
        self.done += 1
        return f"removed {self.done} thing(s)"


async def test_each_run_is_recorded_and_failures_count_until_a_success(make_core: MakeCore, clock: FakeClock,
                                                                       backend: str) -> None:
    async with make_core() as core:
        job = Flaky()
        spec = JobSpec("test.flaky", "0 3 * * *", "a test job", job.run)
        runner = JobRunner(core.db, clock, "node-a")
        store = JobStore(core.db)
        started = clock.now_ms()

        ok = await runner.run(spec, lambda: started + DAY_MS)
        assert (ok.outcome, ok.summary) == ("ok", "removed 1 thing(s)")
        job.failing = True
        for attempt in range(3):
            clock.advance(60)
            failed = await runner.run(spec)
            assert (failed.outcome, failed.summary) == ("failed", "ConnectionError: the blob store did not answer")
        record = (await store.records())["test.flaky"]
        assert (record.runs, record.failed_runs, record.failures, record.last_outcome) == (4, 3, 3, "failed")
        assert record.last_summary == "ConnectionError: the blob store did not answer"
        assert (record.last_started_at, record.last_finished_at) == (clock.now_ms(), clock.now_ms())
        assert record.last_success_at == started
        assert record.next_run_at == started + DAY_MS  # a run that does not know the next one keeps it
        assert record.schedule == "0 3 * * *" and record.last_node == "node-a"
        warnings = await job_warnings(store, clock.now_ms())
        assert [(w.subject, w.target) for w in warnings] == [("job", "test.flaky")]
        assert warnings[0].detail == "failed 3 times in a row: ConnectionError: the blob store did not answer"

        job.failing = False
        assert (await runner.run(spec)).outcome == "ok"
        record = (await store.records())["test.flaky"]
        assert (record.runs, record.failed_runs, record.failures, record.last_outcome) == (5, 3, 0, "ok")
        assert record.last_success_at == clock.now_ms()
        assert await job_warnings(store, clock.now_ms()) == []


async def test_a_job_without_a_success_for_three_intervals_and_a_backlog_are_warned_about(
        make_core: MakeCore, clock: FakeClock, backend: str) -> None:
    async with make_core() as core:
        runner = JobRunner(core.db, clock, "node-a")
        store = JobStore(core.db)
        for name, schedule in (("test.daily", "17 4 * * *"), ("test.often", "every 60s")):
            async def done() -> str:
                return "done"
            assert (await runner.run(JobSpec(name, schedule, "", done))).outcome == "ok"
        clock.advance(3 * 60 + 1)  # three intervals of the frequent job, not of the daily one
        warnings = await job_warnings(store, clock.now_ms())
        assert [(w.target, w.detail) for w in warnings] == [
            ("test.often", "no successful run for 0.1 h (schedule every 60s)")]
        clock.advance(3 * 86400)
        assert {w.target for w in await job_warnings(store, clock.now_ms())} == {"test.daily", "test.often"}

        now = clock.now_ms()
        rows = [(1, "pending", now - 11 * 60_000), (2, "sending", now - 20 * 60_000), (3, "pending", now - 60_000),
                (4, "failed", now - 60_000), (5, "failed", now - DAY_MS)]
        for message_id, state, created_at in rows:
            await core.db.execute(
                "test_outbox", "INSERT INTO outbox (message_id, conversation_id, state, attempts, next_attempt_at, "
                "created_at) VALUES (?, 'p:1:2', ?, 1, ?, ?)", (message_id, state, now, created_at))
        backlog = [w for w in await job_warnings(store, now) if w.subject == "outbox"]
        assert [(w.target, w.detail) for w in backlog] == [
            ("table outbox", "2 row(s) pending for over 10 min, 2 failed")]
