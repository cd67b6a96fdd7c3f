"""The clean-up jobs: what no request can use any more, removed on `jobs.cleanup_schedule`.

Each job is one service method (the rules live with their feature); this module only names
them, schedules them and turns what each removed into its summary line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import JobSpec

if TYPE_CHECKING:
    from ..core import Core

SCHEDULE_KEY = "jobs.cleanup_schedule"


def cleanup_jobs(core: Core) -> list[JobSpec]:
    """`cleanup.sessions`, `cleanup.uploads`, `cleanup.blobs`, `cleanup.link_visits` and `cleanup.qr`; none when
    the schedule is empty."""
    schedule = core.config.jobs.cleanup_schedule.strip()
    if not schedule:
        return []
    grace_ms = core.config.jobs.orphan_grace_h * 3600 * 1000

    async def sessions() -> str:
        return (await core.auth.cleanup_sessions()).summary()

    async def uploads() -> str:
        return (await core.files.cleanup_abandoned()).summary()

    async def blobs() -> str:
        return (await core.files.cleanup_orphans(grace_ms)).summary()

    async def link_visits() -> str:
        return (await core.links.cleanup_visits()).summary()

    async def qr_sessions() -> str:
        return f"removed {await core.qr.cleanup()} expired QR sign-in sessions"

    return [
        JobSpec("cleanup.sessions", schedule,
                "Remove refresh tokens expired over a day ago, token families revoked over a day (and an "
                "access token's lifetime) ago or left without tokens, and failed logins past the lock window",
                sessions, config_key=SCHEDULE_KEY),
        JobSpec("cleanup.uploads", schedule,
                "Remove chunked uploads untouched for files.upload_ttl_h hours, and their chunks "
                "(as `lucky files cleanup`)",
                uploads, config_key=SCHEDULE_KEY),
        JobSpec("cleanup.blobs", schedule,
                "Remove stored blobs, thumbnails and upload chunks that nothing refers to, once older than "
                "jobs.orphan_grace_h hours",
                blobs, lease_s=900, config_key=SCHEDULE_KEY),
        JobSpec("cleanup.link_visits", schedule,
                "Remove short links' visit counts per day older than links.visits_keep_days days (the totals stay)",
                link_visits, config_key=SCHEDULE_KEY),
        JobSpec("cleanup.qr", schedule,
                "Remove QR sign-in sessions that expired over an hour ago (until then a poll still answers expired)",
                qr_sessions, config_key=SCHEDULE_KEY),
    ]
