"""`lucky backup now|list|verify|restore`: archives that are proven, and that move a site."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lucky_server.backup import BackupError
from lucky_server.backup.places import ArchiveInfo, archive_file, default_place, open_place
from lucky_server.backup.restore import RestoreResult, restore_backup
from lucky_server.backup.take import BackupResult, read_passphrase, take_backup
from lucky_server.backup.verify import Verified, verify_archive
from lucky_server.blobs import open_blob_store
from lucky_server.clock import Clock
from lucky_server.core import database_for
from lucky_server.storage import DatabaseError

from . import output
from .context import DataDir, require_config
from .files import human_size

T = TypeVar("T")

backup_app = typer.Typer(
    help="Back up an instance, list and verify archives, restore one into a new data dir.\n\n"
         "Example: lucky backup now --data-dir ./data",
    no_args_is_help=True)

PassphraseFile = typer.Option(None, "--passphrase-file",
                              help="A file whose first line is the passphrase. Default: backup.passphrase_file "
                                   "(now), none (restore, verify).")


class _Bars:
    """Progress of each step as a rich bar on stderr (stdout keeps the archive's path)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def begin(self, step: str, total: int) -> None:
        self._tasks[step] = self._progress.add_task(step, total=total)

    def advance(self, step: str, amount: int = 1) -> None:
        if step in self._tasks:
            self._progress.advance(self._tasks[step], amount)


@contextmanager
def _bars() -> Iterator[_Bars]:
    # Only on a terminal: piped or captured, stderr keeps just the one-line error, if any.
    progress = Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=output.err, transient=False, disable=not output.err.is_terminal)
    with progress:
        yield _Bars(progress)


def _passphrase(path: Optional[Path], data_dir: Path) -> bytes | None:
    if path is None:
        return None
    try:
        return read_passphrase(path, data_dir)
    except BackupError as exc:
        raise output.fail(str(exc)) from None


@backup_app.command("now")
def now(
    data_dir: Path = DataDir,
    to: Optional[str] = typer.Option(None, "--to", help="A folder or s3://KEY:SECRET@HOST:PORT/BUCKET?secure=false. "
                                                        "Default: backup.to, else DATA_DIR/backups."),
    passphrase_file: Optional[Path] = PassphraseFile,
) -> None:
    """Write one archive of the instance (rows from one consistent snapshot, files, lucky.toml,
    secrets) and print its path as the last line. Mode 0600; safe while the server runs.

    Example: lucky backup now --data-dir ./data --to /var/backups/lucky
    """
    config = require_config(data_dir)
    passphrase = _passphrase(passphrase_file, config.data_dir)
    if passphrase is None and config.backup.passphrase_file:
        passphrase = _passphrase(Path(config.backup.passphrase_file), config.data_dir)

    async def go() -> BackupResult:
        place = open_place(to or default_place(config.backup.to, config.data_dir))
        db = database_for(config)
        blobs = open_blob_store(config.storage_url)
        await db.open()
        try:
            await blobs.open()
            with _bars() as bars:
                return await take_backup(config, db, blobs, place, clock=Clock(), passphrase=passphrase,
                                         progress=bars)
        finally:
            await blobs.close()
            await db.close()
            await place.close()

    result = _run(go)
    rows = result.summary["rows"]
    output.ok(f"{result.name}: {human_size(result.size)}, {rows.get('users', 0)} users, "
              f"{rows.get('messages', 0)} messages, {result.summary['blobs']} files' contents, "
              f"schema v{result.summary['schema_version']}, {result.seconds:.1f} s")
    output.info(result.location)


@backup_app.command("list")
def list_archives(
    data_dir: Path = DataDir,
    source: Optional[str] = typer.Option(None, "--from", help="A folder or s3:// URL. Default: backup.to, else "
                                                              "DATA_DIR/backups."),
) -> None:
    """List the archives in a folder or bucket: size, when taken, row counts, encrypted or not.

    Example: lucky backup list --data-dir ./data
    """
    where = source
    if where is None:
        config = require_config(data_dir)
        where = default_place(config.backup.to, config.data_dir)

    async def go() -> tuple[str, list[ArchiveInfo]]:
        place = open_place(where)
        try:
            return place.description, await place.archives()
        finally:
            await place.close()

    description, found = _run(go)
    if not found:
        output.info(f"no archives in {description}")
        return
    rows: list[list[output.Cell]] = []
    for item in found:
        summary = item.summary or {}
        counts = summary.get("rows", {})
        created = summary.get("created_at")
        rows.append([
            item.name, human_size(item.size),
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(created / 1000)) if created else "?",
            str(counts.get("users", "?")), str(counts.get("messages", "?")), str(counts.get("files", "?")),
            output.styled("yes", "yellow") if summary.get("encrypted") else "no",
            output.styled(item.problem, "red") if item.problem else f"v{summary.get('schema_version', '?')} "
                                                                    f"{summary.get('source_engine', '')}",
        ])
    output.table(f"backups in {description}", ["archive", "size", "created", "users", "messages", "files",
                                              "encrypted", "schema"], rows, no_wrap=("archive",))


ArchiveArgument = typer.Argument(..., help="The archive: a file, or s3://KEY:SECRET@HOST:PORT/BUCKET/NAME.")


@backup_app.command("verify")
def verify(
    archive: str = ArchiveArgument,
    passphrase_file: Optional[Path] = PassphraseFile,
) -> None:
    """Read a whole archive and check every checksum, without restoring it (restore's first pass).

    Example: lucky backup verify ./data/backups/lucky-backup-20261204-030000-000.tar
    """
    passphrase = _passphrase(passphrase_file, Path.cwd())

    async def go() -> Verified:
        async with archive_file(archive) as path:
            return await asyncio.to_thread(verify_archive, path, passphrase)

    verified = _run(go)
    manifest = verified.manifest
    rows = sum(int(t["rows"]) for t in manifest["tables"].values())
    output.ok(f"{archive.rsplit('/', 1)[-1]}: every checksum matches ({len(manifest['members'])} members, {rows} rows, "
              f"{manifest['blobs']['count']} blobs, schema v{manifest['schema_version']}, "
              f"from {manifest['source_engine']})")


@backup_app.command("restore")
def restore(
    archive: str = ArchiveArgument,
    data_dir: Path = typer.Option(..., "--data-dir", "-d", help="The new instance's folder: new or empty."),
    database: Optional[str] = typer.Option(None, "--database",
                                           help="The new instance's database, e.g. postgresql://user@host/db "
                                                "(no Lucky tables in it). Default: SQLite in the new data dir."),
    passphrase_file: Optional[Path] = PassphraseFile,
) -> None:
    """Restore an archive into a new instance, on SQLite or PostgreSQL (the way from one to the
    other). Every checksum is verified first; a bad archive writes nothing.

    Example: lucky backup restore ./old/backups/lucky-backup-20261204-030000-000.tar --data-dir ./new --database postgresql://lucky@db/lucky
    """
    passphrase = _passphrase(passphrase_file, Path.cwd())

    async def go() -> RestoreResult:
        async with archive_file(archive) as path:
            with _bars() as bars:
                return await restore_backup(path, data_dir, database_url=database, passphrase=passphrase,
                                            progress=bars)

    result = _run(go)
    output.ok(f"restored {sum(result.rows.values())} rows ({result.rows.get('users', 0)} users, "
              f"{result.rows.get('messages', 0)} messages) and {result.blobs} files' contents into {result.data_dir} "
              f"in {result.seconds:.1f} s")
    output.info(f"next: lucky serve --data-dir {data_dir}")


def _run(go: Callable[[], Awaitable[T]]) -> T:
    """Run the command's coroutine; a backup or database problem is one line and exit 1."""
    try:
        return asyncio.run(go())  # type: ignore[arg-type]
    except (BackupError, DatabaseError) as exc:
        # One line even when a driver's message has several (psycopg's "Is the server running...").
        raise output.fail(" ".join(str(exc).split())) from None
