"""Restoring an archive into a new instance, on SQLite or PostgreSQL: also the way from the
embedded default to PostgreSQL (and back), like Synapse's port_db, but verified.

Nothing is written before the archive is proven (`verify.py`: every checksum, one full pass)
and the targets are found empty (the data dir new or empty, the database without Lucky's
tables). Then a second pass writes: the secrets, the schema by the migrations up to the
archive's version, the rows (in foreign-key order, each value coerced to the target's column
type) with the search index rebuilt from the messages as the writer builds it, a check of
every table's row count and checksum against the manifest, the later migrations, the blobs
(each read back and its sha256 checked), and `lucky.toml` last, because its presence is what
makes a data dir an instance. A failure after the first write removes what the restore
wrote (the data dir's contents, the tables it created) and says why.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tarfile
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..blobs import BlobStore, open_blob_store
from ..clock import Clock
from ..config import CONFIG_FILE, Config, ConfigError, load_config, render_default_toml
from ..search.segment import index_text
from ..storage import Database, DatabaseError, open_database
from ..storage.engine import TableShape, Tx
from ..storage.migrate import migrate
from ..storage.schema import load_migrations
from ..storage.stores.search import SearchStore
from . import BackupError, NoProgress, Progress
from .archive import MANIFEST, ArchiveReader, MemberDigest
from .snapshot import table_checksums
from .verify import Verified, member_digest, verify_archive

log = logging.getLogger(__name__)
INSERT_BATCH = 1000


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    database: str
    rows: dict[str, int]
    blobs: int
    schema_version: int
    seconds: float


def check_new_dir(data_dir: Path) -> None:
    """The data dir must not exist yet, or be an empty folder."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new or empty folder")


def coercer(shape: TableShape, columns: Sequence[str], dialect: str) -> Callable[[Any], tuple[Any, ...]]:
    """A function from an archived row to the values the target's columns take: booleans as
    0/1 on SQLite and true/false on PostgreSQL, integers as integers."""
    kinds = {c.name: c.kind for c in shape.columns}
    missing = [c for c in columns if c not in kinds]
    if missing:
        raise BackupError(f"the archive's table {shape.name} has a column {missing[0]} that the schema lacks")
    plan = [kinds[c] for c in columns]
    width = len(plan)

    def boolean(value: Any) -> Any:
        if value is None:
            return None
        return int(bool(value)) if dialect == "sqlite" else bool(value)

    def integer(value: Any) -> Any:
        return None if value is None else int(value)

    converters: list[Callable[[Any], Any] | None] = [
        boolean if kind == "boolean" else integer if kind == "integer" else None for kind in plan]

    def coerce(row: Any) -> tuple[Any, ...]:
        if not isinstance(row, list) or len(row) != width:
            raise BackupError(f"a row of table {shape.name} does not have its {width} columns")
        return tuple(value if convert is None else convert(value) for convert, value in zip(converters, row))

    return coerce


def _search_rows(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> list[tuple[int, str, str]]:
    """The search index rows of messages, as the writer makes them: text messages not recalled."""
    at = {name: columns.index(name) for name in ("id", "conversation_id", "kind", "body", "recalled")}
    out = []
    for row in rows:
        if row[at["kind"]] != "text" or row[at["recalled"]]:
            continue
        try:
            text = orjson.loads(row[at["body"]]).get("text")
        except (orjson.JSONDecodeError, AttributeError):
            continue  # an unreadable body is served as a placeholder, never found by search
        if isinstance(text, str):
            out.append((int(row[at["id"]]), str(row[at["conversation_id"]]), index_text(text)))
    return out


def restored_config_text(archived: bytes | None, database_url: str | None, s3_storage: str) -> str:
    """The archived lucky.toml for the new data dir: the database is `database_url` (else the
    embedded default in the new folder); local file storage moves into the new folder, S3
    storage stays where the archive says its bytes are (`s3_storage`)."""
    try:
        values: dict[str, Any] = tomllib.loads(archived.decode()) if archived else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BackupError(f"the archive's lucky.toml is not valid TOML: {exc}") from None
    database = dict(values.get("database", {}))
    database.pop("url", None)
    if database_url:
        database["url"] = database_url
    values["database"] = database
    storage = {k: v for k, v in values.get("storage", {}).items() if k != "url"}
    if s3_storage:
        storage["url"] = s3_storage
    values["storage"] = storage
    try:
        return render_default_toml({k: v for k, v in values.items() if v})
    except ConfigError as exc:
        raise BackupError(f"the archive's lucky.toml does not suit this Lucky: {exc}") from None


@dataclass
class _Restoring:
    archive: Path
    data_dir: Path
    database_url: str | None
    passphrase: bytes | None
    clock: Clock
    progress: Progress
    verified: Verified
    config_text: str = ""
    config: Config | None = None
    db: Database | None = None
    blobs: BlobStore | None = None
    shapes: dict[str, TableShape] = field(default_factory=dict)
    created_tables: list[str] = field(default_factory=list)
    tables_done: bool = False
    rows: dict[str, int] = field(default_factory=dict)
    blob_count: int = 0

    @property
    def manifest(self) -> dict[str, Any]:
        return self.verified.manifest

    @property
    def s3_storage(self) -> str:
        return str(self.manifest.get("storage_url", "")) if self.manifest.get("storage") == "s3" else ""

    async def member(self, reader: ArchiveReader, info: tarfile.TarInfo) -> None:
        name = info.name
        if name == MANIFEST:
            await self.finish_tables()
            return
        expected = self.verified.members.get(name)
        if expected is None:
            raise BackupError(f"member {name} was not in the archive when it was verified (it changed)")
        if name.startswith("tables/"):
            data, digest = await asyncio.to_thread(reader.read_member, info)
            self.same(name, digest, expected)
            await self.table_part(name.split("/")[1], data)
            return
        if name.startswith(("files/", "storage/")):
            await self.finish_tables()  # the rows come before the files (take.py)
        if name.startswith("files/"):
            await self.blob(reader, info, expected)
            return
        data, digest = await asyncio.to_thread(reader.read_member, info)
        self.same(name, digest, expected)
        if name == "config/lucky.toml":
            self.config_text = restored_config_text(data, self.database_url, self.s3_storage)
        elif name.startswith("secrets/"):
            await asyncio.to_thread(_write_secret, self.data_dir / "secrets", name.split("/", 1)[1], data)
        elif name == "storage/s3-objects.jsonl":
            await self.remote_blobs(data)

    @staticmethod
    def same(name: str, digest: MemberDigest, expected: MemberDigest) -> None:
        if digest != expected:
            raise BackupError(f"member {name} changed since it was verified; nothing of it was kept")

    async def open_targets(self) -> Database:
        if self.db is not None:
            return self.db
        if not self.config_text:
            self.config_text = restored_config_text(None, self.database_url, self.s3_storage)
        values = tomllib.loads(self.config_text)
        self.config = load_config(self.data_dir, environ={}, overrides=values)
        self.db = open_database(self.config.database_url)
        await self.db.open()
        before = {s.name for s in await self.db.table_shapes()}
        await migrate(self.db, self.clock.now_ms(), up_to=self.verified.schema_version)
        shapes = await self.db.table_shapes()
        self.created_tables = [s.name for s in shapes if s.name not in before]
        self.shapes = {s.name: s for s in shapes}
        self.progress.begin("tables", sum(len(t["parts"]) for t in self.manifest["tables"].values()))
        return self.db

    async def table_part(self, table: str, data: bytes) -> None:
        db = await self.open_targets()
        meta = self.manifest["tables"].get(table)
        shape = self.shapes.get(table)
        if meta is None or shape is None:
            raise BackupError(f"the archive's table {table} is not in schema v{self.verified.schema_version}")
        columns = list(meta["columns"])
        coerce = coercer(shape, columns, db.dialect)
        try:
            rows = [coerce(orjson.loads(line)) for line in data.splitlines() if line]
        except orjson.JSONDecodeError:
            raise BackupError(f"a row of table {table} is not JSON") from None
        search = SearchStore(db) if table == "messages" else None
        for start in range(0, len(rows), INSERT_BATCH):
            batch = rows[start:start + INSERT_BATCH]

            async def insert(tx: Tx, batch: list[tuple[Any, ...]] = batch) -> None:
                await db.insert_rows(tx, shape, columns, batch)
                if search is not None:
                    await search.add(tx, _search_rows(columns, batch))

            try:
                await db.transaction(f"restore_{table}", insert)
            except DatabaseError as exc:
                raise BackupError(f"inserting rows of {table} failed: {exc}") from None
        self.rows[table] = self.rows.get(table, 0) + len(rows)
        self.progress.advance("tables")

    async def finish_tables(self) -> None:
        """After the last rows: compare every table with the manifest, then migrate on."""
        if self.tables_done:
            return
        self.tables_done = True
        db = await self.open_targets()
        expected = {name: meta for name, meta in self.manifest["tables"].items()}
        found = await table_checksums(db, expected)
        for name, meta in expected.items():
            got = found.get(name)
            if got is None or got.rows != meta["rows"]:
                raise BackupError(f"table {name} holds {got.rows if got else 0} rows after the restore, "
                                  f"the archive {meta['rows']}")
            if got.checksum != meta["checksum"]:
                raise BackupError(f"table {name} differs from the archive after the restore (checksum)")
        later = await migrate(db, self.clock.now_ms())
        if later:
            log.info("restore: applied %d later migration(s)", len(later))
            counts = await table_checksums(db, expected)
            for name, meta in expected.items():
                if counts[name].rows != meta["rows"]:
                    raise BackupError(f"table {name} holds {counts[name].rows} rows after the later migrations, "
                                      f"the archive {meta['rows']}")
        self.progress.begin("blobs", int(self.manifest.get("blobs", {}).get("count", 0)))

    async def blob_store(self) -> BlobStore:
        if self.blobs is None:
            assert self.config is not None
            self.blobs = open_blob_store(self.config.storage_url)
            await self.blobs.open()
        return self.blobs

    async def blob(self, reader: ArchiveReader, info: tarfile.TarInfo, expected: MemberDigest) -> None:
        key = info.name.split("/", 1)[1]
        store = await self.blob_store()
        digest = hashlib.sha256()
        chunks = reader.stream_member(info)

        async def source() -> AsyncIterator[bytes]:
            while True:
                chunk = await asyncio.to_thread(next, chunks, None)
                if chunk is None:
                    return
                digest.update(chunk)
                yield chunk

        size = await store.put(key, source())
        self.same(info.name, MemberDigest(size, digest.hexdigest()), expected)
        # Read back: the bytes the new instance will serve are the archived ones.
        back = hashlib.sha256()
        read = await store.read(key)
        async for chunk in read:
            back.update(chunk)
        if back.hexdigest() != expected.sha256:
            raise BackupError(f"blob {key} reads back differently from {store.description}")
        self.blob_count += 1
        self.progress.advance("blobs")

    async def remote_blobs(self, data: bytes) -> None:
        """On S3 storage the bytes stayed in the bucket: every key must still be there."""
        store = await self.blob_store()
        for line in data.splitlines():
            entry = orjson.loads(line)
            size = await store.size(str(entry["key"]))
            if size != int(entry["size"]):
                raise BackupError(f"blob {entry['key']} is {'missing from' if size is None else 'of another size in'} "
                                  f"{store.description}: the archive's S3 objects must still be in the bucket")
            self.blob_count += 1
            self.progress.advance("blobs")

    async def close(self) -> None:
        if self.blobs is not None:
            await self.blobs.close()
        if self.db is not None:
            await self.db.close()


def _write_secret(folder: Path, name: str, data: bytes) -> None:
    if "/" in name or name.startswith("."):
        raise BackupError(f"the archive holds a secret named {name!r}")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_config(data_dir: Path, text: str) -> None:
    tmp = data_dir / f".{CONFIG_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, data_dir / CONFIG_FILE)


async def _check_database(url: str, tables: set[str]) -> None:
    """A target database must hold none of Lucky's tables (`tables`)."""
    db = open_database(url)
    try:
        await db.open()
    except DatabaseError as exc:
        raise BackupError(str(exc)) from None
    try:
        names = {s.name for s in await db.table_shapes()}
    finally:
        await db.close()
    ours = names & (tables | {"schema_version"})
    if ours:
        named = ", ".join(sorted(ours)[:3]) + (", ..." if len(ours) > 3 else "")
        raise BackupError(f"{db.description} already holds Lucky tables ({named}): "
                          "restore into an empty database or schema")


async def restore_backup(archive: Path, data_dir: Path, *, database_url: str | None = None,
                         passphrase: bytes | None = None, clock: Clock | None = None,
                         progress: Progress | None = None) -> RestoreResult:
    """Rebuild an instance in `data_dir` from `archive` (see the module docstring)."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    check_new_dir(data_dir)
    if database_url is not None and not database_url.startswith(("postgresql:", "postgres:", "sqlite:")):
        raise BackupError("--database must be a postgresql://... or sqlite:///... URL")
    progress.begin("verify", 1)
    verified = await asyncio.to_thread(verify_archive, archive, passphrase)
    progress.advance("verify")
    latest = len(load_migrations())
    if verified.schema_version > latest:
        raise BackupError(f"the archive is at schema v{verified.schema_version}, newer than this Lucky "
                          f"(v{latest}): restore it with a newer Lucky")
    if database_url is not None:
        await _check_database(database_url, set(verified.manifest["tables"]))
    existed = data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = _Restoring(archive, data_dir, database_url, passphrase, clock or Clock(), progress, verified)
    try:
        reader = await asyncio.to_thread(ArchiveReader, archive, passphrase)
        try:
            members = iter(reader)
            while (info := await asyncio.to_thread(next, members, None)) is not None:
                await state.member(reader, info)
            await asyncio.to_thread(reader.finish)
        finally:
            reader.close()
        await state.finish_tables()
        await asyncio.to_thread(_write_config, data_dir, state.config_text)
    except BaseException:
        await _undo(state, existed)
        raise
    finally:
        await state.close()
    return RestoreResult(data_dir, state.config.database_url if state.config else "", state.rows, state.blob_count,
                         verified.schema_version, time.perf_counter() - started)


async def _undo(state: _Restoring, existed: bool) -> None:
    """Remove what a failed restore wrote: the tables it created, the data dir's contents."""
    if state.db is not None and state.created_tables:
        order = [name for name in state.manifest.get("order", []) if name in state.created_tables]
        rest = [name for name in state.created_tables if name not in order]
        try:
            await state.db.drop_tables([*reversed(order), *rest])
        except DatabaseError as exc:
            log.error("restore failed and its tables could not be dropped from %s: %s", state.db.description, exc)
    await state.close()
    state.db = None
    state.blobs = None
    if existed:
        for entry in state.data_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    else:
        shutil.rmtree(state.data_dir, ignore_errors=True)
