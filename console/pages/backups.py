"""The backups page: the archives of the configured place (`backup.to`, else the data dir's
backups/), a backup taken now in the background, and an archive downloaded.

An archive holds the instance's secrets and every message: its download is for a signed-in
admin only (the console's session), its name must be an archive's name (no path of any kind
reaches the place), and each download is written to the audit log like a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from lucky_server.backup import BackupError
from lucky_server.backup.places import Place, default_place, is_archive_name, open_place
from lucky_server.backup.take import read_passphrase, take_backup
from lucky_server.config import Config
from lucky_server.core import Core
from lucky_server.errors import LuckyError, not_found
from lucky_server.files.naming import content_disposition

from ..web import PREFIX, Pages, Visit
from .background import RUNS

pages = Pages()

PAGE = 50  # archives per page
RUN = "backup"
WAIT_S = 3.0  # a small instance's backup is written by then: its outcome is the flash message
CHUNK = 1024 * 1024


def _where(config: Config) -> str:
    return default_place(config.backup.to, config.data_dir)


@contextlib.asynccontextmanager
async def _place(config: Config) -> AsyncIterator[Place]:
    try:
        place = open_place(_where(config))
    except BackupError as exc:
        raise LuckyError(503, "unavailable", f"backup.to: {exc}") from None
    try:
        yield place
    finally:
        await place.close()


async def _take(core: Core) -> tuple[str, str]:
    """Write one archive by hand (`lucky-backup-...`, never pruned by the scheduled job)."""
    config = core.config
    passphrase = (read_passphrase(config.backup.passphrase_file, config.data_dir)
                  if config.backup.passphrase_file else None)
    async with _place(config) as place:
        result = await take_backup(config, core.db, core.files.blobs, place, clock=core.clock, passphrase=passphrase)
    return "ok", f"wrote {result.name} ({result.size} bytes) in {result.seconds:.1f} s"


@pages.get(f"{PREFIX}/backups", "Backup archives; take one now; download one")
async def backups(visit: Visit) -> web.StreamResponse:
    config = visit.core.config
    before = visit.query("before")
    archives, problem = [], ""
    try:
        async with _place(config) as place:
            found = await place.archives()  # oldest first (names hold the time)
    except (BackupError, LuckyError) as exc:
        found, problem = [], str(exc)
    newest_first = [a for a in reversed(found) if not before or a.name < before]
    archives = newest_first[:PAGE]
    more = len(newest_first) > PAGE
    return visit.render(
        "backups.html", title="Backups", where=_where(config), archives=archives, problem=problem,
        run=visit.request.app[RUNS].last(RUN), encrypted=bool(config.backup.passphrase_file),
        schedule=config.backup.schedule, keep=config.backup.keep,
        next_url=visit.url(f"{PREFIX}/backups", before=archives[-1].name) if more else "",
        first_url=f"{PREFIX}/backups" if before else "")


@pages.post(f"{PREFIX}/backups/run", "Take a backup now, in the background")
async def run_backup(visit: Visit) -> web.StreamResponse:
    runs = visit.request.app[RUNS]
    core = visit.core
    runs.start(RUN, lambda: _take(core), "A backup is already being written; wait for it to finish.")
    await visit.audit("backup.run", _where(core.config))
    done = await runs.wait(RUN, WAIT_S)
    if done is None:
        flash = "The backup is being written; it appears in the list once complete."
    elif done.outcome == "ok":
        flash = f"Backup done: {done.summary}."
    else:
        flash = f"The backup failed: {done.summary}"
    await visit.redirect(f"{PREFIX}/backups", flash=flash)


@pages.get(f"{PREFIX}/backups/{{name}}/download", "Download one archive")
async def download(visit: Visit) -> web.StreamResponse:
    name = visit.request.match_info["name"]
    if not is_archive_name(name):  # nothing but lucky-(backup|scheduled)-<time>.tar[.enc]
        raise not_found("No such archive.")
    async with _place(visit.core.config) as place:
        info = next((a for a in await place.archives() if a.name == name), None)
        if info is None:
            raise not_found("No such archive (removed since?).")
        await visit.audit("backup.download", name, {"size": info.size})
        try:
            async with place.local_copy(name) as path:
                return await _send(visit, path, name)
        except BackupError as exc:
            raise LuckyError(503, "unavailable", str(exc)) from None


async def _send(visit: Visit, path: Path, name: str) -> web.StreamResponse:
    """The archive's bytes as an attachment, a MiB at a time (read in a thread)."""
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError:
        raise not_found("No such archive (removed since?).") from None
    with handle:
        size = await asyncio.to_thread(lambda: path.stat().st_size)
        response = web.StreamResponse(headers={
            "Content-Disposition": content_disposition("application/octet-stream", name),
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
        response.content_type = "application/octet-stream"
        response.content_length = size
        await response.prepare(visit.request)
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
    return response
