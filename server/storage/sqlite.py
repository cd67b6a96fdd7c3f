"""SQLite through aiosqlite: WAL, one writer task that group-commits, read-only readers.

Every write transaction goes through one queue. The writer takes whatever is waiting (up to
`batch_max` transactions), runs each in its own SAVEPOINT inside one BEGIN IMMEDIATE, and
commits once, so a burst of sends pays one fsync instead of one each. A transaction that
raises rolls back to its savepoint and fails alone; the others in the batch still commit.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiosqlite

from .engine import Database, DatabaseError, Params, Row, Tx, UniqueViolation

log = logging.getLogger(__name__)
T = TypeVar("T")


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row)}


def _translate(exc: sqlite3.Error) -> DatabaseError:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return UniqueViolation(str(exc))
    return DatabaseError(str(exc))


class _SqliteTx(Tx):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cursor = await self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        rowcount = cursor.rowcount
        await cursor.close()
        return rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            async with self._conn.execute(sql, params) as cursor:
                row: Row | None = await cursor.fetchone()  # type: ignore[assignment]
                return row
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            async with self._conn.execute(sql, params) as cursor:
                return list(await cursor.fetchall())  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            raise _translate(exc) from exc


@dataclass
class _Job:
    name: str
    fn: Callable[[Tx], Awaitable[Any]]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str, *, readers: int = 2, batch_max: int = 256) -> None:
        # sqlite:///var/lib/lucky/lucky.db is absolute (extra leading slashes are tolerated);
        # sqlite:relative.db is relative to the working directory.
        raw = urlsplit(url).path
        if raw.startswith("/"):
            raw = "/" + raw.lstrip("/")
        if not raw or raw == "/":
            raise DatabaseError("sqlite URL needs a path, e.g. sqlite:///var/lib/lucky/lucky.db")
        self.path = Path(raw)
        self._reader_count = readers
        self._batch_max = batch_max
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = 0
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self.batches_committed = 0
        self.last_batch_size = 0

    @property
    def description(self) -> str:
        return f"sqlite {self.path}"

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            self._writer.row_factory = _dict_row
            for pragma in (
                "PRAGMA journal_mode=WAL",
                # FULL: a commit is on disk before `sent` is answered; group commit pays for it.
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=5000",
            ):
                await self._writer.execute(pragma)
            for _ in range(self._reader_count):
                reader = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
                reader.row_factory = _dict_row
                await reader.execute("PRAGMA busy_timeout=5000")
                await reader.execute("PRAGMA query_only=ON")
                self._readers.append(reader)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise DatabaseError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._writer_task = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    async def close(self) -> None:
        if self._writer_task is not None:
            await self._queue.put(None)
            await self._writer_task
            self._writer_task = None
        for reader in self._readers:
            await reader.close()
        self._readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    def _reader(self) -> aiosqlite.Connection:
        if not self._readers:
            raise DatabaseError("the database is not open")
        self._next_reader = (self._next_reader + 1) % len(self._readers)
        return self._readers[self._next_reader]

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await _SqliteTx(self._reader()).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await _SqliteTx(self._reader()).fetch_all(sql, params)

    async def transaction(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> T:
        if self._writer_task is None:
            raise DatabaseError("the database is not open")
        job = _Job(name, fn)
        await self._queue.put(job)
        result: T = await job.future
        return result

    async def lock_for_migration(self, tx: Tx) -> None:
        # One writer connection per process and BEGIN IMMEDIATE already serialize writers.
        return None

    async def _write_loop(self) -> None:
        assert self._writer is not None
        conn = self._writer
        tx = _SqliteTx(conn)
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stopping = True  # finish this batch, then stop
                    break
                batch.append(job)
            await self._run_batch(conn, tx, batch)

    async def _run_batch(self, conn: aiosqlite.Connection, tx: _SqliteTx, batch: list[_Job]) -> None:
        started = time.perf_counter()
        outcomes: list[tuple[bool, Any]] = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                await conn.execute("SAVEPOINT job")
                try:
                    result = await job.fn(tx)
                except BaseException as exc:  # noqa: BLE001 - handed to the job's caller
                    await conn.execute("ROLLBACK TO job")
                    await conn.execute("RELEASE job")
                    outcomes.append((False, exc))
                else:
                    await conn.execute("RELEASE job")
                    outcomes.append((True, result))
            await conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("sqlite batch of %d failed to commit: %s", len(batch), exc)
            try:
                await conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            error = _translate(exc)
            outcomes = [(False, error) for _ in batch]
        self.batches_committed += 1
        self.last_batch_size = len(batch)
        for job, (ok, value) in zip(batch, outcomes):
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        elapsed = time.perf_counter() - started
        if elapsed > 0.5:
            log.warning("slow sqlite batch: %d transactions (%s...) took %.3fs",
                        len(batch), batch[0].name, elapsed)
