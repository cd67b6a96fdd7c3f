"""`lucky files ...`: what the file storage holds, and clearing abandoned uploads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lucky_server.blobs import BlobError, BlobStore, open_blob_store
from lucky_server.blobs.copy import BlobCopier, CopyItem, CopyReport, Outcome
from lucky_server.core import Core
from lucky_server.files.copying import copy_files, items_to_copy
from lucky_server.files.model import CleanupReport
from lucky_server.storage.stores.files import FileStats

from . import output
from .output import fail
from .context import DataDir, require_config, with_core

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


def _target(url: str, source: str) -> BlobStore:
    """The store named by --to, refused early when it cannot be right."""
    if url.rstrip("/") == source.rstrip("/"):
        raise fail(f"--to is the configured storage.url already ({source}): give the store to copy to")
    try:
        store = open_blob_store(url)
    except BlobError as exc:
        raise fail(f"--to: {exc}") from None
    except ValueError as exc:  # a malformed URL (a port that is not a number)
        raise fail(f"--to is not a storage URL ({exc}): use file:///path or "
                   "s3://KEY:SECRET@HOST:PORT/BUCKET?secure=false") from None
    if store.backend == "s3" and not getattr(store, "bucket", ""):
        raise fail("--to names no bucket: use s3://KEY:SECRET@HOST:PORT/BUCKET?secure=false")
    return store


@files_app.command("copy")
def copy(
    to: str = typer.Option(..., "--to", help="The store to copy to: file:///path or "
                                             "s3://KEY:SECRET@HOST:PORT/BUCKET?secure=false."),
    data_dir: Path = DataDir,
    verify_only: bool = typer.Option(False, "--verify-only",
                                     help="Copy nothing: check that the target holds every key, byte for byte."),
) -> None:
    """Copy every stored file to another store (a folder to S3), each copy verified by reading it back.

    Copies what the database references (checked against the sha256 it records) and the
    store's other keys under blobs/, thumbs/ and uploads/. Resumable: keys the target already
    holds with the right size and sha256 are skipped. Safe while the server runs; for the last
    pass stop the nodes, run it again, then set storage.url to the new store and start them.
    Once nothing failed, the blob rows record the new kind of store. Exits 1 if any key failed.

    Example: lucky files copy --to 's3://KEY:SECRET@s3.example.com:9000/lucky' --data-dir ./data
    """
    config = require_config(data_dir)
    target = _target(to, config.storage_url)

    async def go(core: Core) -> tuple[CopyReport, int, str]:
        try:
            await target.open()
            try:
                await target.check()
            except Exception as exc:  # noqa: BLE001 - any reason the target is unusable, in one line
                raise fail(f"cannot use {target.description} ({str(exc).strip() or type(exc).__name__}): "
                           "check the --to URL, its credentials and that the store is up") from None
            items = await items_to_copy(core.db, core.files.blobs)
            with _Bar(len(items), "verifying" if verify_only else "copying") as advance:
                copier = BlobCopier(core.files.blobs, target, verify_only=verify_only, on_done=advance)
                report, relabelled = await copy_files(core.db, copier, items)
            return report, relabelled, core.files.blobs.description
        finally:
            await target.close()

    report, relabelled, source = with_core(data_dir, go)
    _print_report(report, relabelled, source, target.description, verify_only)


class _Bar:
    """A rich progress bar on stderr (only on a terminal: piped output stays the summary)."""

    def __init__(self, total: int, what: str) -> None:
        self._progress = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=output.err, disable=not output.err.is_terminal)
        self._task = self._progress.add_task(what, total=total)

    def __enter__(self) -> Callable[[CopyItem, Outcome], None]:
        self._progress.start()
        return lambda item, outcome: self._progress.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _print_report(report: CopyReport, relabelled: int, source: str, target: str, verify_only: bool) -> None:
    title = f"files {'verified' if verify_only else 'copied'}: {source} -> {target}"
    rows = [["matching" if verify_only else "skipped (already there)", str(report.skipped)],
            ["failed", str(report.failed)]]
    if not verify_only:
        rows.insert(0, ["copied", f"{report.copied} ({human_size(report.bytes_copied)})"])
    output.table(title, ["what", "keys"], rows)
    for key, why in report.failures[:_SHOWN_FAILURES]:
        output.info(f"failed: {key}: {why}")
    if report.failed > _SHOWN_FAILURES:
        output.info(f"... and {report.failed - _SHOWN_FAILURES} more")
    if report.failures:
        raise fail(f"{report.failed} key(s) failed (listed above): fix the cause and run the same command "
                   "again; it skips what is already copied")
    if verify_only:
        output.ok(f"{target} holds every key, byte for byte")
        return
    if relabelled:
        output.ok(f"{relabelled} blob row(s) now record {target} as their store")
    output.info("next: set storage.url to the --to URL in lucky.toml on every node, then restart them")


_SHOWN_FAILURES = 20
