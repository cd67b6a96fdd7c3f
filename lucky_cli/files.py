"""`lucky files ...`: what the file storage holds, and clearing abandoned uploads."""

from __future__ import annotations

from pathlib import Path

import typer

from lucky_server.core import Core
from lucky_server.files.model import CleanupReport
from lucky_server.storage.stores.files import FileStats

from . import output
from .context import DataDir, with_core

files_app = typer.Typer(help="Look after stored files.\n\nExample: lucky files stats", no_args_is_help=True)


def human_size(n: int) -> str:
    """A byte count for people: 12 B, 3.4 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


@files_app.command("stats")
def stats(data_dir: Path = DataDir) -> None:
    """Count the files and the bytes stored, by storage backend.

    Files are what users uploaded (one per upload, even of the same content); blobs are the
    contents stored, each once however many files share it.

    Example: lucky files stats --data-dir ./data
    """

    async def go(core: Core) -> tuple[FileStats, str]:
        return await core.files.stats(), core.files.blobs.description

    result, where = with_core(data_dir, go)
    output.table(f"files: {where}", ["what", "count", "bytes", "size"], [
        ["files", str(result.files), str(result.file_bytes), human_size(result.file_bytes)],
        ["uploaders", str(result.owners), "", ""],
        *[[f"blobs on {backend}", str(count), str(size), human_size(size)]
          for backend, (count, size) in sorted(result.blobs_by_backend.items())],
        ["open uploads (chunks received)", str(result.open_uploads), str(result.upload_bytes),
         human_size(result.upload_bytes)],
    ])


@files_app.command("cleanup")
def cleanup(data_dir: Path = DataDir) -> None:
    """Remove chunked uploads untouched for files.upload_ttl_h hours, and their chunks.

    Example: lucky files cleanup --data-dir ./data
    """

    async def go(core: Core) -> CleanupReport:
        return await core.files.cleanup_abandoned()

    report = with_core(data_dir, go)
    output.ok(report.summary())
