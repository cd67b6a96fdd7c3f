"""Every scheduled job of a server, built from its services and config: the one list that
the scheduler runs and that `lucky jobs`, the admin API and the console show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backup.schedule import backup_jobs
from .cleanup import cleanup_jobs
from .model import JobSpec

if TYPE_CHECKING:
    from ..core import Core


def standard_jobs(core: Core) -> list[JobSpec]:
    jobs: list[JobSpec] = []
    jobs.append(JobSpec(
        "outbox.retry", f"every {core.config.jobs.outbox_every_s}s",
        "Dispatch again the messages left undispatched past outbox.grace_s, and send the offline-push "
        "notifications that are due (retries, and those a stopped node left)",
        core.outbox.run_job, lease_s=120, config_key="jobs.outbox_every_s"))
    jobs.extend(cleanup_jobs(core))
    jobs.extend(backup_jobs(core))
    return jobs
