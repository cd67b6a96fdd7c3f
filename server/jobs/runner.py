"""Running one job once, under its lease, and recording how it went.

The scheduler of every process and `lucky jobs run` go through `JobRunner.run`, so a job never
runs twice at once anywhere on one site: the lease (a row of job_leases, or a Redis key on a site
of several nodes: leases.py) is taken atomically, renewed while the job runs (a run longer than
its lease keeps it), and released after. A process that finds the lease held skips the run;
nothing is recorded for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock
from ..storage import Database
from ..storage.stores.jobs import JobStore
from .leases import JobLeases, LeaseUnavailable
from .model import JobSpec
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

# A summary or an error kept in job_runs, shown by `lucky jobs` and the admin API.
MAX_SUMMARY = 500


@dataclass(frozen=True)
class RunResult:
    name: str
    outcome: str  # "ok", "failed", or "skipped" (another process holds the lease)
    summary: str  # what the job said it did, or the error; the holder's name when skipped


def node_name(configured: str) -> str:
    """This node's name: `server.node_id`, or the host name."""
    return configured or socket.gethostname()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY - 3] + "..."


class JobRunner:
    def __init__(self, db: Database, clock: Clock, node: str, leases: JobLeases | None = None) -> None:
        """`leases`: where the jobs' leases live (None: the database's job_leases)."""
        self.store = JobStore(db)  # the records of runs
        self.leases: JobLeases = leases if leases is not None else self.store
        self._clock = clock
        self.node = node
        # Two processes on one node (a server and `lucky jobs run`) are two holders.
        self.holder = f"{node}:{os.getpid()}:{secrets.token_hex(4)}"
        self._unavailable: set[str] = set()  # jobs whose lease store was down at their last tick

    async def run(self, spec: JobSpec, next_run: Callable[[], int | None] = lambda: None) -> RunResult:
        """Run the job now if its lease is free; record the run (`next_run`: when it runs
        next, read once the run is over; None keeps what was recorded)."""
        lease_ms = spec.lease_s * 1000
        try:
            taken = await self.leases.acquire(spec.name, self.holder, self._clock.now_ms(), lease_ms)
        except LeaseUnavailable as exc:
            # One line per job per outage, not a traceback every tick on every node.
            if spec.name not in self._unavailable:
                log.warning("job %s skipped while its lease cannot be taken: %s", spec.name, exc)
                self._unavailable.add(spec.name)
            return RunResult(spec.name, "skipped", str(exc))
        self._unavailable.discard(spec.name)
        if not taken:
            held = (await self.leases.held(self._clock.now_ms())).get(spec.name, "another process")
            log.debug("job %s skipped on %s: %s holds its lease", spec.name, self.holder, held)
            return RunResult(spec.name, "skipped", held)
        renewing = asyncio.create_task(self._keep(spec))
        try:
            return await self._run_holding(spec, next_run)
        finally:
            await cancel_and_wait(renewing)
            try:
                await self.leases.release(spec.name, self.holder)
            except Exception:  # noqa: BLE001 - it expires on its own
                log.warning("could not release the lease of job %s", spec.name, exc_info=True)

    async def _run_holding(self, spec: JobSpec, next_run: Callable[[], int | None]) -> RunResult:
        await self.store.started(spec.name, spec.schedule, self.node, self._clock.now_ms())
        started = self._clock.monotonic()
        try:
            summary = _short(await spec.run() or "done")
        except asyncio.CancelledError:
            # The server stopped before the job finished (after its shutdown timeout).
            await self._record(spec, False, "cancelled: the server stopped during the run", next_run)
            raise
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the next one retries
            reason = _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            log.exception("job %s failed on %s: %s", spec.name, self.node, reason)
            await self._record(spec, False, reason, next_run)
            return RunResult(spec.name, "failed", reason)
        log.info("job %s on %s: %s (%.1f s)", spec.name, self.node, summary, self._clock.monotonic() - started)
        await self._record(spec, True, summary, next_run)
        return RunResult(spec.name, "ok", summary)

    async def _record(self, spec: JobSpec, ok: bool, summary: str, next_run: Callable[[], int | None]) -> None:
        try:
            await self.store.finished(spec.name, ok, summary, self._clock.now_ms(), next_run())
        except Exception:  # noqa: BLE001 - the run happened; only its record is lost
            log.warning("could not record the run of job %s", spec.name, exc_info=True)

    async def _keep(self, spec: JobSpec) -> None:
        """Renew the lease every third of its length while the job runs."""
        every_s = max(spec.lease_s / 3, 0.05)
        while True:
            await asyncio.sleep(every_s)
            try:
                kept = await self.leases.renew(spec.name, self.holder, self._clock.now_ms() + spec.lease_s * 1000)
            except Exception:  # noqa: BLE001 - the next renewal tries again before it expires
                log.warning("could not renew the lease of job %s", spec.name, exc_info=True)
                continue
            if not kept:
                log.warning("job %s lost its lease on %s (it expired and was taken); the run goes on",
                            spec.name, self.holder)
