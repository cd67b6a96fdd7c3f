"""One scheduler per process (APScheduler's `AsyncIOScheduler`), running every `JobSpec`.

Missed runs are coalesced into one, and a job runs at most once at a time in a process; the
lease (`JobRunner`) keeps it to one at a time across processes and nodes. Each run is a task
of our own, which APScheduler's executor only waits on: at shutdown a running job is given
`server.shutdown_timeout_s` to finish, then cancelled, and its lease released, all before the
database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timezone
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from ..config import ConfigError
from .model import JobSpec
from .runner import JobRunner
from .schedule import BadSchedule, trigger
from .service import JobService

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger(__name__)


def triggers_of(specs: Sequence[JobSpec]) -> dict[str, BaseTrigger]:
    """Each job's trigger; ConfigError naming the config key of a schedule that is not one."""
    found = {}
    for spec in specs:
        try:
            found[spec.name] = trigger(spec.schedule)
        except BadSchedule as exc:
            raise ConfigError(spec.config_key or f"the schedule of job {spec.name}", str(exc)) from None
    return found


class Scheduler:
    def __init__(self, specs: Sequence[JobSpec], runner: JobRunner, *, shutdown_timeout_s: float) -> None:
        self._specs = list(specs)
        self._triggers = triggers_of(specs)  # a bad schedule stops the start, before anything runs
        self._runner = runner
        self._shutdown_timeout_s = shutdown_timeout_s
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def start(self) -> None:
        # APScheduler logs "Running job" and "executed successfully" at INFO for every run;
        # the runner logs one line per run with what it did instead.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(timezone=timezone.utc, job_defaults={
            "coalesce": True,  # a burst of missed runs (a busy loop, a suspended VM) is one run
            "max_instances": 1,
            "misfire_grace_time": None,  # late is better than never: the lease decides who runs
        })
        for spec in self._specs:
            scheduler.add_job(self._fire, self._triggers[spec.name], args=[spec], id=spec.name, name=spec.name)
        scheduler.start()
        self._scheduler = scheduler
        for spec in self._specs:
            try:
                await self._runner.store.scheduled(spec.name, spec.schedule, self._next_run(spec.name))
            except Exception:  # noqa: BLE001 - only what `lucky jobs` shows as the next run
                log.warning("could not record the next run of job %s", spec.name, exc_info=True)
        # DEBUG: the one line a start that then fails (its port is taken) prints is the reason.
        log.debug("scheduler started on %s: %d job(s)", self._runner.node, len(self._specs))

    def _next_run(self, name: str) -> int | None:
        job = self._scheduler.get_job(name) if self._scheduler is not None else None
        when = job.next_run_time if job is not None else None
        return None if when is None else int(when.timestamp() * 1000)

    async def _fire(self, spec: JobSpec) -> None:
        if self._stopping:  # APScheduler's shutdown takes effect on the loop's next turn
            return
        task: asyncio.Task[object] = asyncio.create_task(self._runner.run(spec, lambda: self._next_run(spec.name)),
                                                         name=f"job {spec.name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # APScheduler's executor cancels what it waits on when it shuts down; the run
            # itself is ours to finish or cancel (stop), so its cancellation is not an error.
            return

    async def stop(self) -> None:
        """Stop scheduling; let running jobs finish within the shutdown timeout, then cancel them."""
        self._stopping = True
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        running = list(self._running)
        if not running:
            return
        log.info("waiting up to %.0f s for %d running job(s)", self._shutdown_timeout_s, len(running))
        _, late = await asyncio.wait(running, timeout=self._shutdown_timeout_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            log.warning("cancelled %d job(s) still running at shutdown", len(late))


@contextlib.asynccontextmanager
async def scheduled_jobs(core: Core) -> AsyncIterator[None]:
    """Run `standard_jobs(core)` on this process's scheduler while the block runs (nothing
    when `jobs.enabled` is false); stopped, its running jobs finished or cancelled, on exit."""
    if not core.config.jobs.enabled:
        yield
        return
    jobs = JobService.of(core)
    scheduler = Scheduler(jobs.specs, jobs.runner, shutdown_timeout_s=core.config.server.shutdown_timeout_s)
    await scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()
