"""Every scheduled job of a server, built from its services and config: the one list that
the scheduler runs and that `lucky jobs`, the admin API and the console show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cleanup import cleanup_jobs
from .model import JobSpec

if TYPE_CHECKING:
    from ..core import Core


def standard_jobs(core: Core) -> list[JobSpec]:
    jobs: list[JobSpec] = []
    jobs.extend(cleanup_jobs(core))
    return jobs
