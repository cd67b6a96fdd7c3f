"""The scheduled backup: an archive to `backup.to` on `backup.schedule`, keeping the newest
`backup.keep` scheduled archives.

Only archives this job made (named `lucky-scheduled-...`) are ever pruned: one taken by hand
(`lucky-backup-...`) or anything else in the folder or bucket stays. The job runs inside the
server: the snapshot is read a batch at a time and the archive written in a worker thread, so
chat goes on meanwhile (see take.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..blobs import BlobStore
from ..clock import Clock
from ..config import Config
from ..jobs.model import JobSpec
from ..storage import Database
from .places import Place, default_place, open_place
from .take import read_passphrase, take_backup

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger(__name__)


async def prune(place: Place, keep: int) -> list[str]:
    """Remove the scheduled archives beyond the newest `keep` (0: keep them all); the names removed."""
    if keep <= 0:
        return []
    scheduled = [a.name for a in await place.archives() if a.scheduled]
    doomed = scheduled[:max(0, len(scheduled) - keep)]  # names sort by time, oldest first
    for name in doomed:
        await place.remove(name)
        log.info("removed old scheduled backup %s from %s", name, place.description)
    return doomed


def scheduled_backup(config: Config, db: Database, blobs: BlobStore, clock: Clock) -> Callable[[], Awaitable[str]]:
    """The job's work: take a backup, prune, and say what happened in one line."""

    async def run() -> str:
        passphrase = (read_passphrase(config.backup.passphrase_file, config.data_dir)
                      if config.backup.passphrase_file else None)
        place = open_place(default_place(config.backup.to, config.data_dir))
        try:
            result = await take_backup(config, db, blobs, place, clock=clock, passphrase=passphrase, scheduled=True)
            removed = await prune(place, config.backup.keep)
        finally:
            await place.close()
        rows = result.summary["rows"]
        return (f"wrote {result.name} ({result.size} bytes, {rows.get('messages', 0)} messages, "
                f"{result.summary['blobs']} blobs) in {result.seconds:.1f} s; removed {len(removed)} old")

    return run


def backup_jobs(core: Core) -> list[JobSpec]:
    """The `backup` job, or none when `backup.schedule` is empty."""
    config = core.config
    if not config.backup.schedule.strip():
        return []
    return [JobSpec(
        "backup", config.backup.schedule,
        "Write an archive of the instance to backup.to (default: the data dir's backups/) and keep the newest "
        + (f"{config.backup.keep} scheduled ones" if config.backup.keep else "scheduled ones all"),
        scheduled_backup(config, core.db, core.files.blobs, core.clock), lease_s=600, config_key="backup.schedule")]
