"""What the edges ask about scheduled jobs: how each one is doing (`lucky jobs`, the admin API,
`/metrics`), what deserves a warning (`lucky doctor`), and running one now (`lucky jobs run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..bus import RedisKeys
from ..clock import Clock
from ..errors import not_found
from ..metrics import JobCounts, Metrics
from ..storage import Database
from ..storage.stores.jobs import JobStore, RunRecord
from .catalog import standard_jobs
from .leases import JobLeases, RedisJobLeases
from .model import JobSpec
from .runner import JobRunner, RunResult, node_name
from .schedule import BadSchedule, interval_ms, next_run_ms

if TYPE_CHECKING:
    from ..core import Core

FAILURES_TO_WARN = 3  # consecutive failed runs
LATE_INTERVALS = 3  # a job whose last success is older than this many of its intervals
BACKLOG_LATE_MS = 10 * 60 * 1000  # a row still pending this long after it was written


@dataclass(frozen=True)
class JobStatus:
    """One job as `lucky jobs` and `GET /api/v1/admin/jobs` show it."""

    name: str
    schedule: str
    description: str
    last_started_at: int | None
    last_finished_at: int | None
    last_outcome: str | None  # "ok", "failed", or None before the first run
    last_summary: str
    failures: int  # consecutive
    runs: int
    next_run_at: int | None
    running: bool
    node: str  # the node of the last run, or the holder of the lease while it runs

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "schedule": self.schedule, "description": self.description,
                "last_started_at": self.last_started_at, "last_finished_at": self.last_finished_at,
                "last_outcome": self.last_outcome, "last_summary": self.last_summary, "failures": self.failures,
                "runs": self.runs, "next_run_at": self.next_run_at, "running": self.running}


@dataclass(frozen=True)
class JobWarning:
    """Something `lucky doctor` shows without failing: `subject` (job, outbox...) and `target`."""

    subject: str
    target: str
    detail: str


def _next_run(schedule: str, recorded: int | None, now_ms: int) -> int | None:
    """What a server recorded, while it is still ahead; else computed from the schedule."""
    if recorded is not None and recorded >= now_ms:
        return recorded
    try:
        return next_run_ms(schedule, now_ms)
    except BadSchedule:
        return None


async def job_warnings(store: JobStore, now_ms: int) -> list[JobWarning]:
    """Jobs failing again and again, jobs without a success for three of their intervals, and
    outbox or delivery rows left pending over 10 minutes or marked failed. Read from the
    database alone (each run records its schedule), so `lucky doctor` needs no services."""
    found = []
    for record in (await store.records()).values():
        if record.failures >= FAILURES_TO_WARN:
            found.append(JobWarning("job", record.name,
                                    f"failed {record.failures} times in a row: {record.last_summary}"))
        elif record.last_success_at is not None:
            try:
                every = interval_ms(record.schedule, now_ms)
            except BadSchedule:
                continue
            if every and now_ms - record.last_success_at > LATE_INTERVALS * every:
                hours = (now_ms - record.last_success_at) / 3_600_000
                found.append(JobWarning("job", record.name,
                                        f"no successful run for {hours:.1f} h (schedule {record.schedule})"))
    for backlog in await store.backlog(now_ms - BACKLOG_LATE_MS):
        if backlog.stale or backlog.failed:
            found.append(JobWarning(backlog.table, f"table {backlog.table}",
                                    f"{backlog.stale} row(s) pending for over 10 min, {backlog.failed} failed"))
    return found


class JobService:
    def __init__(self, specs: list[JobSpec], db: Database, clock: Clock, node: str, leases: JobLeases) -> None:
        self.specs = specs
        self.runner = JobRunner(db, clock, node, leases)
        self.store = self.runner.store
        self.leases = leases
        self._clock = clock

    @classmethod
    def of(cls, core: Core) -> JobService:
        """The jobs of `standard_jobs(core)`, run as this node, under leases in Redis when the
        site has it (every node and the CLI then agree there), else in the database."""
        from ..bus.redis_bus import RedisBus

        bus = core.bus
        leases: JobLeases = (RedisJobLeases(bus.client, RedisKeys(core.config.redis.prefix), core.clock)
                             if isinstance(bus, RedisBus) else JobStore(core.db))
        return cls(standard_jobs(core), core.db, core.clock, node_name(core.config.server.node_id), leases)

    async def statuses(self) -> list[JobStatus]:
        """Every scheduled job, in the catalog's order, with its last run and next run."""
        now = self._clock.now_ms()
        records = await self.store.records()
        held = await self.leases.held(now)
        return [self._status(spec, records.get(spec.name), held.get(spec.name), now) for spec in self.specs]

    @staticmethod
    def _status(spec: JobSpec, record: RunRecord | None, holder: str | None, now_ms: int) -> JobStatus:
        node = holder or (record.last_node if record else "")
        if record is None:
            return JobStatus(spec.name, spec.schedule, spec.description, None, None, None, "", 0, 0,
                             _next_run(spec.schedule, None, now_ms), holder is not None, node)
        return JobStatus(spec.name, spec.schedule, spec.description, record.last_started_at,
                         record.last_finished_at, record.last_outcome or None, record.last_summary, record.failures,
                         record.runs, _next_run(spec.schedule, record.next_run_at, now_ms), holder is not None, node)

    def spec(self, name: str) -> JobSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise not_found(f"No job named {name!r}; the jobs are: {', '.join(s.name for s in self.specs) or 'none'}.")

    async def run_now(self, name: str) -> RunResult:
        """Run one job now, under the same lease as the servers' runs (so never beside one)."""
        return await self.runner.run(self.spec(name))

    async def warnings(self) -> list[JobWarning]:
        return await job_warnings(self.store, self._clock.now_ms())


async def refresh_job_metrics(metrics: Metrics, db: Database) -> None:
    """Set the job metrics from job_runs (every node's runs), before a scrape."""
    metrics.jobs.jobs = [JobCounts(r.name, r.runs - r.failed_runs, r.failed_runs, r.failures, r.last_success_at)
                         for r in (await JobStore(db).records()).values()]
