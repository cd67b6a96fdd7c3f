"""The scheduled backup job, called directly (the scheduler that runs it is tested with the
jobs): it writes an archive to backup.to and keeps only the newest backup.keep of its own."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from lucky_server.backup.places import FolderPlace
from lucky_server.backup.schedule import backup_jobs, scheduled_backup
from lucky_server.clock import FakeClock
from lucky_server.config import BackupConfig

from ..chat.conftest import MakeChat
from .conftest import backup_of, core_of, send_text


async def test_the_job_keeps_the_newest_scheduled_archives_and_nothing_else(make_chat: MakeChat,
                                                                           tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    (tmp_path / "pass").write_text("scheduled secret\n")
    chat = await make_chat(backup={"to": str(folder), "keep": 2, "passphrase_file": str(tmp_path / "pass")})
    ann, bob = await chat.user(f"ann{uuid.uuid4().hex[:6]}"), await chat.user(f"bob{uuid.uuid4().hex[:6]}")
    await send_text(ann, bob, "hello", "h1")
    by_hand = await backup_of(chat, folder)
    folder.joinpath("notes.txt").write_text("not an archive")
    core = core_of(chat)
    clock = FakeClock()
    run = scheduled_backup(core.config, core.db, core.files.blobs, clock)
    lines = []
    for _ in range(4):
        clock.advance(3600)
        lines.append(await run())
    names = sorted(p.name for p in folder.iterdir())
    scheduled = [n for n in names if n.startswith("lucky-scheduled-")]
    assert len(scheduled) == 2 and all(n.endswith(".tar.enc") for n in scheduled)
    assert names == sorted([by_hand.name, "notes.txt", *scheduled])
    assert scheduled == sorted(line.split()[1] for line in lines[-2:])
    assert lines[0].startswith("wrote lucky-scheduled-") and "1 messages" in lines[0]
    assert lines[0].endswith("removed 0 old") and lines[-1].endswith("removed 1 old")
    listed = await FolderPlace(folder).archives()
    assert [a.name for a in listed if a.scheduled] == scheduled


async def test_the_job_is_listed_unless_the_schedule_is_empty(make_chat: MakeChat) -> None:
    chat = await make_chat(backup={"schedule": "30 2 * * *"})
    core = core_of(chat)
    [job] = backup_jobs(core)
    assert (job.name, job.schedule, job.config_key) == ("backup", "30 2 * * *", "backup.schedule")
    off = dataclasses.replace(core, config=dataclasses.replace(core.config, backup=BackupConfig(schedule="")))
    assert backup_jobs(off) == []
