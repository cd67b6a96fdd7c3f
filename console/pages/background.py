"""Work an operator starts from the console that outlives the request: a backup, a job run now.

A page starts it and waits a few seconds; what finishes by then is answered at once, the rest
goes on in this process and its page shows it running, then its outcome. One run per name at
a time (a second "run now" while one runs is 409). The runs are the server's: `setup_background`
keeps them under an app key and cancels what still runs when the server stops, before the
services close (a backup cancelled half-way leaves no archive, see `take_backup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from lucky_server.clock import Clock
from lucky_server.errors import conflict
from lucky_server.keys import CORE

log = logging.getLogger(__name__)

# The outcome of a piece of work: "ok" or "failed" (or "skipped", a job whose lease another
# process holds), and one line saying what happened.
Work = Callable[[], Awaitable[tuple[str, str]]]


@dataclass
class Run:
    """One run: when it started and, once over, when it finished and how it went."""

    name: str
    started_at: int
    finished_at: int | None = None
    outcome: str = ""  # "" while it runs
    summary: str = ""

    @property
    def running(self) -> bool:
        return self.finished_at is None


class BackgroundRuns:
    """The runs this process started from the console, by name; the last one of each kept."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._runs: dict[str, Run] = {}
        self._tasks: dict[str, asyncio.Task[Run]] = {}

    def last(self, name: str) -> Run | None:
        """The run of `name` going on, else the last one finished (None: none since start)."""
        return self._runs.get(name)

    def start(self, name: str, work: Work, busy: str) -> Run:
        """Start `work` as the run `name`; 409 with `busy` when that run is still going on."""
        current = self._runs.get(name)
        if current is not None and current.running:
            raise conflict(busy)
        run = Run(name, self._clock.now_ms())
        self._runs[name] = run
        self._tasks[name] = asyncio.create_task(self._do(run, work), name=f"console-{name}")
        return run

    async def _do(self, run: Run, work: Work) -> Run:
        try:
            run.outcome, run.summary = await work()
        except asyncio.CancelledError:
            run.outcome, run.summary = "failed", "cancelled: the server stopped during the run"
            raise
        except Exception as exc:  # noqa: BLE001 - shown on the page, and logged
            log.exception("console run %s failed", run.name)
            run.outcome, run.summary = "failed", str(exc) or type(exc).__name__
        finally:
            run.finished_at = self._clock.now_ms()
            self._tasks.pop(run.name, None)
        return run

    async def wait(self, name: str, timeout_s: float) -> Run | None:
        """The run of `name` once finished, waiting at most `timeout_s`; None if still going."""
        task = self._tasks.get(name)
        if task is not None:
            await asyncio.wait([task], timeout=timeout_s)
        run = self._runs.get(name)
        return run if run is not None and not run.running else None

    async def stop(self) -> None:
        """Cancel every run still going on, and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


RUNS: web.AppKey[BackgroundRuns] = web.AppKey("console_runs", BackgroundRuns)


def setup_background(app: web.Application) -> None:
    """Keep the console's runs under `RUNS` while the server runs. Added after the core's
    context, so it is torn down first: runs are cancelled while the database is still open."""

    async def runs_ctx(app: web.Application) -> AsyncIterator[None]:
        runs = BackgroundRuns(app[CORE].clock)
        app[RUNS] = runs
        try:
            yield
        finally:
            await runs.stop()

    app.cleanup_ctx.append(runs_ctx)
