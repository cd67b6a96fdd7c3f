"""Scheduled jobs: each job's lease (which node runs it now) and the record of its runs."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class RunRecord:
    """What job_runs holds for one job: every run counted, the last one described."""

    name: str
    schedule: str
    runs: int
    failed_runs: int
    failures: int  # consecutive, up to the last run
    last_started_at: int | None
    last_finished_at: int | None
    last_success_at: int | None
    last_outcome: str  # "", "ok" or "failed"
    last_summary: str
    last_node: str
    next_run_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> RunRecord:
        return cls(row["name"], row["schedule"], int(row["runs"]), int(row["failed_runs"]), int(row["failures"]),
                   _opt(row["last_started_at"]), _opt(row["last_finished_at"]), _opt(row["last_success_at"]),
                   row["last_outcome"], row["last_summary"], row["last_node"], _opt(row["next_run_at"]))


@dataclass(frozen=True)
class Backlog:
    """Rows of one outbox-like table that are late: pending too long, or given up on."""

    table: str
    stale: int
    failed: int


def _opt(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


_RUN = ("SELECT name, schedule, runs, failed_runs, failures, last_started_at, last_finished_at, last_success_at, "
        "last_outcome, last_summary, last_node, next_run_at FROM job_runs ")
# The tables whose rows wait to be sent (the chat outbox, webhook deliveries): both have
# state ('pending', 'sending' while an attempt runs, 'failed') and created_at.
BACKLOG_TABLES = ("outbox", "deliveries")


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- leases ----------------------------------------------------------------------------

    async def acquire(self, name: str, holder: str, now_ms: int, lease_ms: int) -> bool:
        """Take the job's lease for `lease_ms` if it is free, expired, or `holder`'s already.

        One statement, so two nodes asking at once cannot both win: the upsert's WHERE is
        evaluated against the row as it is when this statement locks it (PostgreSQL), or
        inside the one writer (SQLite). Zero rows changed means someone else holds it.
        """

        async def write(tx: Tx) -> int:
            return await tx.execute(
                "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE job_leases.expires_at < ? OR job_leases.holder = ?",
                (name, holder, now_ms + lease_ms, now_ms, holder))

        return await self._db.transaction("job_lease_acquire", write) == 1

    async def renew(self, name: str, holder: str, expires_at: int) -> bool:
        """Extend a lease `holder` still has; False if it was lost (it expired and was taken)."""
        changed = await self._db.execute(
            "job_lease_renew", "UPDATE job_leases SET expires_at = ? WHERE name = ? AND holder = ?",
            (expires_at, name, holder))
        return changed == 1

    async def release(self, name: str, holder: str) -> None:
        await self._db.execute("job_lease_release", "DELETE FROM job_leases WHERE name = ? AND holder = ?",
                               (name, holder))

    async def held(self, now_ms: int) -> dict[str, str]:
        """Job name -> holder, for each lease that has not expired (a job running somewhere)."""
        rows = await self._db.fetch_all("SELECT name, holder FROM job_leases WHERE expires_at >= ?", (now_ms,))
        return {r["name"]: r["holder"] for r in rows}

    # --- runs ------------------------------------------------------------------------------

    async def started(self, name: str, schedule: str, node: str, now_ms: int) -> None:
        await self._db.execute(
            "job_run_start",
            "INSERT INTO job_runs (name, schedule, last_started_at, last_node) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, "
            "last_started_at = excluded.last_started_at, last_node = excluded.last_node",
            (name, schedule, now_ms, node))

    async def finished(self, name: str, ok: bool, summary: str, now_ms: int, next_run_at: int | None) -> None:
        """Count a run (after `started`): ok resets the consecutive failures, failed adds one;
        `next_run_at` None keeps the one recorded (a run from the CLI does not know it)."""
        if ok:
            sql = ("UPDATE job_runs SET runs = runs + 1, failures = 0, last_outcome = 'ok', last_summary = ?, "
                   "last_finished_at = ?, last_success_at = ?, next_run_at = COALESCE(?, next_run_at) WHERE name = ?")
            params: tuple[object, ...] = (summary, now_ms, now_ms, next_run_at, name)
        else:
            sql = ("UPDATE job_runs SET runs = runs + 1, failed_runs = failed_runs + 1, failures = failures + 1, "
                   "last_outcome = 'failed', last_summary = ?, last_finished_at = ?, "
                   "next_run_at = COALESCE(?, next_run_at) WHERE name = ?")
            params = (summary, now_ms, next_run_at, name)
        await self._db.execute("job_run_finish", sql, params)

    async def scheduled(self, name: str, schedule: str, next_run_at: int | None) -> None:
        """Record when a job runs next (the scheduler's plan, shown by `lucky jobs`)."""
        await self._db.execute(
            "job_run_plan",
            "INSERT INTO job_runs (name, schedule, next_run_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, next_run_at = excluded.next_run_at",
            (name, schedule, next_run_at))

    async def records(self) -> dict[str, RunRecord]:
        rows = await self._db.fetch_all(_RUN + "ORDER BY name")
        return {r["name"]: RunRecord.from_row(r) for r in rows}

    # --- what waits to be sent ---------------------------------------------------------------

    async def backlog(self, created_before_ms: int) -> list[Backlog]:
        """For the outbox and the deliveries: rows waiting (pending, or being sent) since before
        `created_before_ms`, and rows marked failed (each table's (state, next_attempt_at) index)."""
        found = []
        for table in BACKLOG_TABLES:
            row = await self._db.fetch_one(
                f"SELECT COALESCE(SUM(CASE WHEN state <> 'failed' AND created_at < ? THEN 1 ELSE 0 END), 0) AS stale, "
                f"COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS failed "
                f"FROM {table} WHERE state IN ('pending', 'sending', 'failed')",
                (created_before_ms,))
            assert row is not None
            found.append(Backlog(table, int(row["stale"]), int(row["failed"])))
        return found
