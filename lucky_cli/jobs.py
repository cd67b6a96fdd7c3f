"""`lucky jobs` (each scheduled job and how it is doing) and `lucky jobs run NAME`."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import typer

from lucky_server.core import Core
from lucky_server.jobs.runner import RunResult
from lucky_server.jobs.service import JobService, JobStatus

from . import output
from .context import DataDir, with_core

jobs_app = typer.Typer(
    help="Scheduled jobs: what runs when, and how the last run went.\n\n"
         "Example: lucky jobs --data-dir ./data",
    invoke_without_command=True,
)


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _outcome(status: JobStatus) -> output.Cell:
    if status.running:
        return output.styled(f"running on {status.node}", "cyan")
    if status.last_outcome == "failed":
        return output.styled(f"failed x{status.failures}" if status.failures > 1 else "failed", "red")
    if status.last_outcome == "ok":
        return output.styled("ok", "green")
    return "-"


@jobs_app.callback()
def jobs(ctx: typer.Context, data_dir: Path = DataDir,
         as_json: bool = typer.Option(False, "--json", help="Print the jobs as JSON (the admin API's items).")) -> None:
    """List each scheduled job: schedule, last run, outcome, summary, next run.

    Works whether or not a server runs: what the servers recorded is read from the database,
    and a next run no server has recorded is computed from the schedule (UTC).

    Example: lucky jobs --data-dir ./data --json
    """
    if ctx.invoked_subcommand is not None:
        return

    async def go(core: Core) -> list[JobStatus]:
        return await JobService.of(core).statuses()

    statuses = with_core(data_dir, go)
    if as_json:
        output.out.print(json.dumps({"items": [s.to_json() for s in statuses]}, indent=2), markup=False,
                         highlight=False, soft_wrap=True)
        return
    output.table(f"jobs: {data_dir}", ["job", "schedule", "last run", "outcome", "summary", "next run"], [
        [s.name, s.schedule, _when(s.last_started_at), _outcome(s), s.last_summary or "-", _when(s.next_run_at)]
        for s in statuses], no_wrap=("job", "schedule", "last run", "outcome", "next run"))


@jobs_app.command("run")
def run(name: str = typer.Argument(..., help="The job's name, as `lucky jobs` lists it."),
        data_dir: Path = DataDir) -> None:
    """Run one job now and print what it did (exit 1 if it failed, with the reason).

    It takes the same lease as the servers' runs, so it never runs beside a server's run of
    the same job: if one is running, this says so and exits 1.

    Example: lucky jobs run cleanup.uploads --data-dir ./data
    """

    # The outcome is printed below, the reason of a failure in one line; the job's own log
    # lines (a failure's traceback) only with LUCKY_DEBUG=1.
    if os.environ.get("LUCKY_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.getLogger().addHandler(logging.NullHandler())

    async def go(core: Core) -> RunResult:
        return await JobService.of(core).run_now(name)

    result = with_core(data_dir, go)
    if result.outcome == "skipped":
        raise output.fail(f"{name} is running elsewhere right now ({result.summary}); try again when it is done")
    if result.outcome == "failed":
        raise output.fail(f"{name} failed: {result.summary}")
    output.ok(f"{name}: {result.summary}")
