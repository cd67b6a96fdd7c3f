"""Taking a backup: one archive from one consistent snapshot, streamed, without stalling chat.

Rows are read from the snapshot a batch at a time (a server-side cursor, or fetchmany on
SQLite's read connection), so a running server's event loop gets control back between
batches; the archive is written and hashed in a worker thread, a part (PART_BYTES) at a time.
Blobs are written after the rows: a blob row in the snapshot was committed after its bytes
were stored (files/service.py), so its bytes are there, unless something deleted them since,
which fails the backup, because such an archive would not restore.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .. import __version__
from ..blobs import BlobStore
from ..blobs.local import LocalBlobStore
from ..clock import Clock
from ..config import CONFIG_FILE, Config
from ..storage import Database
from ..storage.engine import Snapshot, TableShape
from ..storage.schema import load_migrations
from . import BackupError, NoProgress, Progress
from .archive import PART_BYTES, ArchiveWriter
from .encryption import new_key
from .places import Place, archive_name
from .snapshot import LEFT_OUT, TableDigest, backed_up, normalized_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    """An archive just written: where, its name and size, its summary, and how long it took."""

    location: str
    name: str
    size: int
    summary: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class _BlobRef:
    key: str
    size: int
    sha256: str


def read_passphrase(path: str | Path, data_dir: Path) -> bytes:
    """The passphrase in a file (a relative path is taken from the data dir): its first line."""
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = data_dir / file
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read the passphrase file {file}: {exc.strerror}") from None
    passphrase = text.split(b"\n", 1)[0].rstrip(b"\r")
    if not passphrase:
        raise BackupError(f"the passphrase file {file} is empty")
    return passphrase


class _Taking:
    """The state of one backup being written."""

    def __init__(self, config: Config, db: Database, blobs: BlobStore, writer: ArchiveWriter,
                 progress: Progress) -> None:
        self.config = config
        self.db = db
        self.blobs = blobs
        self.writer = writer
        self.progress = progress
        self.tables: dict[str, dict[str, Any]] = {}
        self.blob_refs: list[_BlobRef] = []
        self.schema_version = 0

    async def add(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self.writer.add_bytes, name, data)

    async def instance_files(self) -> None:
        """lucky.toml and the secrets: what the restored instance needs to read its data."""
        config_file = self.config.data_dir / CONFIG_FILE
        if config_file.is_file():
            await self.add("config/lucky.toml", config_file.read_bytes())
        secrets = self.config.secrets_dir
        if secrets.is_dir():
            for path in sorted(secrets.iterdir()):
                if path.is_file():
                    await self.add(f"secrets/{path.name}", path.read_bytes())

    async def rows(self, snapshot: Snapshot) -> None:
        shapes = await snapshot.tables()
        version_table = next((s for s in shapes if s.name == "schema_version"), None)
        if version_table is None:
            raise BackupError("the database has no schema: run `lucky migrate` (or `lucky init`) first")
        async for batch in normalized_rows(snapshot, version_table):
            self.schema_version = max([self.schema_version, *(int(r[0]) for r in batch)])
        latest = len(load_migrations())
        if self.schema_version > latest:
            raise BackupError(f"the database is at schema v{self.schema_version}, newer than this Lucky "
                              f"(v{latest}): back it up with the Lucky that migrated it")
        tables = backed_up(shapes)
        self.progress.begin("tables", len(tables))
        for shape in tables:
            await self.table(snapshot, shape)
            self.progress.advance("tables")

    async def table(self, snapshot: Snapshot, shape: TableShape) -> None:
        columns = [c.name for c in shape.columns]
        digest = TableDigest(columns)
        parts: list[str] = []
        buffer = bytearray()
        blob_columns = ((columns.index("backend"), columns.index("blob_key"), columns.index("size"),
                         columns.index("sha256")) if shape.name == "blobs" else None)

        async def flush() -> None:
            name = f"tables/{shape.name}/{len(parts) + 1:06d}.jsonl"
            await self.add(name, bytes(buffer))
            parts.append(name)
            buffer.clear()

        async for rows in normalized_rows(snapshot, shape):
            for row in rows:
                digest.add(row)
                buffer += orjson.dumps(row)
                buffer += b"\n"
                if blob_columns is not None and row[blob_columns[0]] == self.blobs.backend:
                    backend, key, size, sha256 = blob_columns
                    self.blob_refs.append(_BlobRef(str(row[key]), int(row[size]), str(row[sha256])))
            if len(buffer) >= PART_BYTES:
                await flush()
        if buffer:
            await flush()
        self.tables[shape.name] = {
            "columns": columns, "kinds": [c.kind for c in shape.columns], "references": list(shape.references),
            "rows": digest.rows, "checksum": digest.hexdigest(), "parts": parts,
        }

    async def local_blobs(self, store: LocalBlobStore) -> int:
        self.progress.begin("blobs", len(self.blob_refs))
        total = 0
        for ref in self.blob_refs:
            path = store.path(ref.key)
            if not await asyncio.to_thread(path.is_file):
                raise BackupError(f"blob {ref.key} is missing from {store.description}: a backup without it "
                                  "would not restore (see `lucky files stats`); nothing was kept")
            digest = await asyncio.to_thread(self.writer.add_file, f"files/{ref.key}", path)
            if digest.sha256 != ref.sha256 or digest.size != ref.size:
                raise BackupError(f"blob {ref.key} in {store.description} does not match its recorded sha256 "
                                  "and size (damaged on disk); nothing was kept")
            total += digest.size
            self.progress.advance("blobs")
        return total

    async def remote_blobs(self) -> int:
        """On S3 storage: the keys the rows reference, with sizes; the bytes stay in the bucket."""
        self.progress.begin("blobs", len(self.blob_refs))
        lines = bytearray()
        total = 0
        for ref in self.blob_refs:
            size = await self.blobs.size(ref.key)
            if size is None:
                raise BackupError(f"blob {ref.key} is missing from {self.blobs.description}: a backup without "
                                  "it would not restore; nothing was kept")
            lines += orjson.dumps({"key": ref.key, "size": size, "sha256": ref.sha256}) + b"\n"
            total += size
            self.progress.advance("blobs")
        await self.add("storage/s3-objects.jsonl", bytes(lines))
        return total


async def _write(config: Config, db: Database, blobs: BlobStore, writer: ArchiveWriter, now: int, scheduled: bool,
                 progress: Progress) -> dict[str, Any]:
    """Every member, then the manifest and the summary; the summary."""
    taking = _Taking(config, db, blobs, writer, progress)
    await taking.instance_files()
    async with db.snapshot() as snapshot:
        await taking.rows(snapshot)
    if isinstance(blobs, LocalBlobStore):
        blob_bytes = await taking.local_blobs(blobs)
    else:
        blob_bytes = await taking.remote_blobs()
    manifest = {
        "format": 1, "lucky_version": __version__, "schema_version": taking.schema_version,
        "source_engine": db.dialect, "created_at": now, "storage": blobs.backend,
        "order": list(taking.tables), "tables": taking.tables, "left_out": LEFT_OUT,
        "blobs": {"count": len(taking.blob_refs), "bytes": blob_bytes},
        # Where the S3 bytes stayed, even when lucky.toml does not say (an environment
        # variable): the restored instance must read them there.
        "storage_url": config.storage_url if blobs.backend == "s3" else "",
    }
    summary: dict[str, Any] = {
        "lucky_version": __version__, "schema_version": taking.schema_version, "source_engine": db.dialect,
        "created_at": now, "scheduled": scheduled, "storage": blobs.backend,
        "rows": {t: v["rows"] for t, v in taking.tables.items()},
        "blobs": len(taking.blob_refs), "blob_bytes": blob_bytes,
    }
    return await asyncio.to_thread(writer.finish, manifest, summary)


async def take_backup(config: Config, db: Database, blobs: BlobStore, place: Place, *, clock: Clock,
                      passphrase: bytes | None = None, scheduled: bool = False,
                      progress: Progress | None = None) -> BackupResult:
    """Write one archive of the instance into `place`; what was written.

    Nothing is left behind when it fails: the temporary file is removed.
    """
    started = time.perf_counter()
    now = clock.now_ms()
    name = archive_name(now, scheduled=scheduled, encrypted=passphrase is not None)
    crypto = await asyncio.to_thread(new_key, passphrase) if passphrase is not None else None
    temporary, handle = place.new_file(name)
    kept = False
    try:
        with os.fdopen(handle, "wb") as out:
            writer = await asyncio.to_thread(ArchiveWriter, out, now // 1000, crypto)
            try:
                summary = await _write(config, db, blobs, writer, now, scheduled, progress or NoProgress())
            except BaseException:
                writer.abort()
                raise
            await asyncio.to_thread(os.fsync, out.fileno())
            size = out.tell()
        location = await place.keep(temporary, name)
        kept = True
    finally:
        if not kept:
            temporary.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    log.info("backup %s written to %s: %d bytes, %d messages, %d blobs in %.2fs", name, place.description, size,
             summary["rows"].get("messages", 0), summary["blobs"], seconds)
    return BackupResult(location, name, size, summary, seconds)
