"""What a scheduled job is, for the scheduler, `lucky jobs`, the admin API and the console."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job.

    `schedule` is either `every <N>s` (a fixed interval) or a five-field crontab in UTC
    (`0 3 * * *`). `run` does the work and returns one line saying what it did ("dispatched 3
    messages"); it raises when the work failed, and the run is recorded as failed. A job
    runs on one node at a time: the scheduler holds the job's lease for `lease_s` seconds,
    renewed while it runs.
    """

    name: str
    schedule: str
    description: str
    run: Callable[[], Awaitable[str]]
    lease_s: int = 300
    # The config key the schedule comes from (`jobs.cleanup_schedule`), named by the error
    # that stops the start when the schedule is not one.
    config_key: str = ""
