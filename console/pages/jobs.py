"""The jobs page: `lucky jobs` as a table (schedule, last run and its summary, next run, whether
it runs now and where), and a job run now.

A run started here goes through the same lease as the scheduler's (`JobService.run_now`), so it
never runs beside a scheduled run on any node; it runs in the background (a backup job may
take minutes) and is answered at once when it finishes within a few seconds.
"""

from __future__ import annotations

from aiohttp import web

from lucky_server.jobs.service import JobService

from ..web import PREFIX, Pages, Visit
from .background import RUNS, Run

pages = Pages()

WAIT_S = 3.0


def _run_name(job: str) -> str:
    return f"job:{job}"


@pages.get(f"{PREFIX}/jobs", "Scheduled jobs: last and next runs; run one now")
async def jobs(visit: Visit) -> web.StreamResponse:
    runs = visit.request.app[RUNS]
    statuses = await JobService.of(visit.core).statuses()
    started: dict[str, Run | None] = {s.name: runs.last(_run_name(s.name)) for s in statuses}
    return visit.render("jobs.html", title="Jobs", jobs=statuses, started=started,
                        enabled=visit.core.config.jobs.enabled)


@pages.post(f"{PREFIX}/jobs/{{name}}/run", "Run one job now")
async def run_job(visit: Visit) -> web.StreamResponse:
    service = JobService.of(visit.core)
    name = service.spec(visit.request.match_info["name"]).name  # 404 for a job that does not exist

    async def work() -> tuple[str, str]:
        result = await service.run_now(name)
        if result.outcome == "skipped":
            return "skipped", f"not run: {result.summary} holds its lease (it is running there)"
        return result.outcome, result.summary

    runs = visit.request.app[RUNS]
    runs.start(_run_name(name), work, f"{name} is already running from the console; wait for it to finish.")
    await visit.audit("job.run", name)
    done = await runs.wait(_run_name(name), WAIT_S)
    if done is None:
        flash = f"{name} is running; its outcome shows here once it is over."
    else:
        flash = f"{name}: {done.outcome}: {done.summary}"
    await visit.redirect(f"{PREFIX}/jobs", flash=flash)
