"""SQLite through aiosqlite: WAL, one writer task that group-commits, read-only readers.

Every write transaction goes through one queue. The writer takes whatever is waiting (up to
`batch_max` transactions), runs each in its own SAVEPOINT inside one BEGIN IMMEDIATE, and
commits once, so a burst of sends pays one fsync instead of one each. A transaction that
raises rolls back to its savepoint and fails alone; the others in the batch still commit.
`close()` lets the writer finish every transaction already queued, then refuses new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, unquote, urlsplit

import aiosqlite

from .engine import (
    Column,
    Database,
    DatabaseError,
    Params,
    Row,
    Snapshot,
    TableShape,
    Tx,
    UndefinedTable,
    UniqueViolation,
    column_kind,
    quote_name,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row)}


_UNIQUE_ERRORS = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def _translate(exc: sqlite3.Error) -> DatabaseError:
    if isinstance(exc, sqlite3.IntegrityError) and (
        getattr(exc, "sqlite_errorname", "") in _UNIQUE_ERRORS or "UNIQUE constraint" in str(exc)
    ):
        return UniqueViolation(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such table"):
        return UndefinedTable(str(exc))
    return DatabaseError(str(exc))


class _PoisonedByFailure(Tx):
    """A failed statement poisons the transaction, as it does on PostgreSQL, so that code
    which only works on SQLite is caught on SQLite."""

    failed: DatabaseError | None = None

    def _fail(self, exc: sqlite3.Error) -> DatabaseError:
        self.failed = _translate(exc)
        return self.failed

    def raise_if_failed(self) -> None:
        """Before any statement, and after the transaction's code returned: an error that code
        caught and ignored still fails the transaction."""
        if self.failed is not None:
            raise DatabaseError(f"the transaction was aborted by an earlier error: {self.failed}")


class _ThreadTx(_PoisonedByFailure):
    """Statements run at once on the sqlite3 connection, for a transaction driven whole on
    the connection's thread (`transaction_on_thread`): its awaits never suspend."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _call(self, fn: Callable[[], T]) -> T:
        self.raise_if_failed()
        try:
            return fn()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        return self._call(lambda: self._db.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._call(lambda: self._db.executemany(sql, rows))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = self._call(lambda: self._db.execute(sql, params).fetchall())
        return rows


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (it awaits only a `_ThreadTx`) to its end, here."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a transaction_on_thread function awaited something other than its Tx")


class _SqliteTx(_PoisonedByFailure):
    """Statements on one connection, each call a trip to the connection's thread.

    Each call into aiosqlite is a round trip to the connection's thread, and under load the
    trip back waits for the busy event loop, so a transaction saves trips: `executemany`
    (whose result nobody reads) and the opening statements given as `first` are held and
    run on the thread together with the next statement whose result is awaited, or with
    `finish` (COMMIT, RELEASE). A held write that fails fails that later call, and the
    transaction with it, as any failed statement does.
    """

    def __init__(self, conn: aiosqlite.Connection, first: tuple[str, ...] = ()) -> None:
        self._conn = conn
        self._held: list[tuple[str, list[Params] | None]] = [(sql, None) for sql in first]
        self.started = not first  # whether the `first` statements have been sent to the thread

    async def _run(self, last: Callable[[sqlite3.Connection], T]) -> T:
        """Run the held statements, then `last`, in one call on the connection's thread."""
        self.raise_if_failed()
        held, self._held = self._held, []
        self.started = True
        conn = self._conn

        def run() -> T:
            db = conn._conn  # the sqlite3 connection, used only on its own thread
            for sql, rows in held:
                if rows is None:
                    db.execute(sql)
                else:
                    db.executemany(sql, rows)
            return last(db)

        try:
            # aiosqlite's own helpers (execute_fetchall, ...) are built on `_execute` the same way.
            result: T = await conn._execute(run)  # type: ignore[no-untyped-call]
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        return result

    async def execute(self, sql: str, params: Params = ()) -> int:
        # The cursor is not closed: a finished write statement holds nothing.
        return await self._run(lambda db: db.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.raise_if_failed()
        batch = list(rows)
        if batch:
            self._held.append((sql, batch))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        # Run and read in one call on the connection's thread: no cursor stays open across
        # an await, so a reader never keeps an old snapshot (a stale read) between queries.
        rows: list[Row] = await self._run(lambda db: db.execute(sql, params).fetchall())
        return rows

    async def finish(self, sql: str) -> None:
        """Run what is held, then `sql` (COMMIT, RELEASE ...), in one call."""
        await self._run(lambda db: db.execute(sql))


class _SqliteSnapshot(Snapshot):
    """Reads on one read-only connection inside one `BEGIN` (a WAL read transaction): every
    query sees the database as it was at the first one, while the writer goes on."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _all(self, sql: str) -> list[tuple[Any, ...]]:
        async with self._conn.execute(sql) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def tables(self) -> list[TableShape]:
        # table_list's type is 'table' for ordinary tables: an FTS5 table is 'virtual' and
        # its storage 'shadow', and sqlite_* are the engine's own.
        names = [str(r[1]) for r in await self._all("PRAGMA main.table_list")
                 if r[2] == "table" and not str(r[1]).startswith("sqlite_")]
        shapes = []
        for name in sorted(names):
            columns = tuple(Column(str(r[1]), column_kind(str(r[2])))
                            for r in await self._all(f"PRAGMA main.table_info({quote_name(name)})"))
            references = sorted({str(r[2]) for r in await self._all(f"PRAGMA main.foreign_key_list({quote_name(name)})")})
            shapes.append(TableShape(name, columns, tuple(references)))
        return shapes

    async def rows(self, table: TableShape, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        names = ", ".join(quote_name(c.name) for c in table.columns)
        async with self._conn.execute(f"SELECT {names} FROM {quote_name(table.name)}") as cursor:
            while True:
                rows = await cursor.fetchmany(batch)
                if not rows:
                    return
                yield [tuple(r) for r in rows]


@dataclass
class _Job:
    name: str
    fn: Callable[[Tx], Awaitable[Any]]
    on_thread: bool = False  # run whole on the connection's thread (transaction_on_thread)
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _answer(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    """Hand a transaction's (ok, result or error) to its caller, unless it gave up."""
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _run_on_thread(db: sqlite3.Connection, fn: Callable[[Tx], Awaitable[Any]], begin: str, end: str,
                   undo: tuple[str, ...]) -> tuple[bool, Any]:
    """On the connection's thread: `begin`, `fn` driven to its end, then `end`; on failure
    `undo`. (True, result) or (False, the error)."""
    tx = _ThreadTx(db)
    try:
        db.execute(begin)
        result = _drive(cast("Coroutine[Any, Any, Any]", fn(tx)))
        tx.raise_if_failed()
        db.execute(end)
    except Exception as exc:  # noqa: BLE001 - handed to the job's caller
        for sql in undo:
            with contextlib.suppress(sqlite3.Error):
                db.execute(sql)
        return False, _translate(exc) if isinstance(exc, sqlite3.Error) else exc
    return True, result


async def _attempt_on_thread(conn: aiosqlite.Connection, job: _Job, begin: str, end: str,
                             undo: tuple[str, ...]) -> tuple[bool, Any]:
    """`_attempt` for a `transaction_on_thread` job: `begin`, its code, then `end`, in one
    call on the connection's thread; on failure `undo` runs there too."""
    # conn._conn: the sqlite3 connection, used only on its own thread (as _SqliteTx does).
    outcome: tuple[bool, Any] = await conn._execute(  # type: ignore[no-untyped-call]
        lambda: _run_on_thread(conn._conn, job.fn, begin, end, undo))
    return outcome


async def _attempt(job: _Job, tx: _SqliteTx, end: str) -> tuple[bool, Any]:
    """Run a job's code in `tx`, then `end` (COMMIT or RELEASE) with its held writes:
    (True, result) or (False, the error). Undoing a failure is the caller's."""
    try:
        result = await job.fn(tx)
        tx.raise_if_failed()
        await tx.finish(end)
    except Exception as exc:  # noqa: BLE001 - handed to the job's caller
        return False, exc
    return True, result


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str, *, readers: int = 2, batch_max: int = 256) -> None:
        # sqlite:///var/lib/lucky/lucky.db is absolute (extra leading slashes are tolerated);
        # sqlite:relative.db is relative to the working directory.
        raw = unquote(urlsplit(url).path)
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
        self._closing = False
        # The writer connection runs one batch at a time: the loop's, or a lone on-thread
        # transaction run straight from its caller while the loop waits for work (`_enqueue`).
        self._free = asyncio.Event()
        self._free.set()
        self._loop_waiting = False  # the write loop is waiting for work, holding no job
        # Batches that reached the disk, and the size of the last one (for /metrics).
        self.batches_committed = 0
        self.last_batch_size = 0

    @property
    def description(self) -> str:
        return f"sqlite {self.path}"

    async def open(self) -> None:
        self._closing = False
        self._queue = asyncio.Queue()
        self._free = asyncio.Event()
        self._free.set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            self._writer.row_factory = _dict_row  # type: ignore[assignment]  # aiosqlite types it as a class
            for pragma in (
                "PRAGMA journal_mode=WAL",
                # FULL: a commit is on disk before `sent` is answered; group commit pays for it.
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=5000",
            ):
                await self._writer.execute(pragma)
            for _ in range(self._reader_count):
                # A URI, so the path is quoted: a `?`, `#` or `%` in it is part of the name.
                reader = await aiosqlite.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True,
                                                 isolation_level=None)
                reader.row_factory = _dict_row  # type: ignore[assignment]
                await reader.execute("PRAGMA busy_timeout=5000")
                await reader.execute("PRAGMA query_only=ON")
                self._readers.append(reader)
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise DatabaseError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._writer_task = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    async def close(self) -> None:
        self._closing = True  # transaction() refuses from now on; the queue only drains
        if self._writer_task is not None:
            await self._queue.put(None)
            try:
                await self._writer_task
            finally:
                self._writer_task = None
        while not self._free.is_set():  # a transaction run from its caller finishes first
            await self._free.wait()
        self._fail_queued(DatabaseError("the database was closed before this write ran"))
        for reader in self._readers:
            await reader.close()
        self._readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    def _fail_queued(self, error: DatabaseError) -> None:
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(error)

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
        result: T = await self._enqueue(_Job(name, fn))
        return result

    async def transaction_on_thread(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> T:
        result: T = await self._enqueue(_Job(name, fn, on_thread=True))
        return result

    async def _enqueue(self, job: _Job) -> Any:
        if self._writer_task is None or self._closing:
            raise DatabaseError("the database is not open")
        if self._writer_task.done():
            raise DatabaseError("the SQLite writer has stopped; restart the server")
        conn = self._free_for_caller() if job.on_thread else None
        if conn is not None:
            # Nothing else is waiting or running: the transaction goes to the connection's
            # thread from here, without a hop through the queue and the loop's task. The send
            # writer's batches are such transactions, so a send is batched once (by the
            # writer), not twice.
            await self._exclusively(conn, [job])
        else:
            self._queue.put_nowait(job)
        return await job.future

    def _free_for_caller(self) -> aiosqlite.Connection | None:
        """The writer connection, when a transaction may go to it straight from its caller:
        the write loop waits for work and no batch holds the connection."""
        running = self._writer_task is not None and not self._writer_task.done() and not self._closing
        if running and self._loop_waiting and self._free.is_set():
            return self._writer
        return None

    def start_on_thread(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> asyncio.Future[T]:
        conn = self._free_for_caller()
        if conn is None:
            return super().start_on_thread(name, fn)
        # As `_enqueue`'s path from the caller, minus the awaits: the connection is taken
        # (`_free`) until the outcome is back on the loop, so nothing else interleaves on it.
        self._free.clear()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        started = time.perf_counter()

        def finish(outcome: tuple[bool, Any]) -> None:  # on the loop
            self._free.set()
            self._record(outcome[0], 1, started, name)
            _answer(future, outcome)  # unless its caller gave up (cancelled): the outcome stands

        def run() -> None:  # on the connection's thread
            try:
                outcome = _run_on_thread(conn._conn, fn, "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",))
            except BaseException as exc:  # noqa: BLE001 - the connection must be given back
                outcome = (False, DatabaseError(f"the transaction failed on the database's thread: {exc!r}"))
            loop.call_soon_threadsafe(finish, outcome)

        # No future for aiosqlite to answer: `run` answers with one callback of its own.
        conn._tx.put_nowait((None, run))
        return future

    async def _exclusively(self, conn: aiosqlite.Connection, batch: list[_Job]) -> None:
        """Run a batch once no other batch runs on the writer connection."""
        while not self._free.is_set():
            await self._free.wait()
        self._free.clear()
        try:
            await self._run_batch(conn, batch)
        finally:
            self._free.set()

    async def lock_for_migration(self, tx: Tx) -> None:
        # One writer connection per process and BEGIN IMMEDIATE already serialize writers.
        return None

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        try:
            conn = await aiosqlite.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot read SQLite database {self.path}: {exc}") from exc
        try:
            await conn.execute("PRAGMA busy_timeout=5000")
            await conn.execute("BEGIN")
            # The read transaction (and so the snapshot) starts with the first read.
            await conn.execute_fetchall("SELECT COUNT(*) FROM sqlite_schema")
            yield _SqliteSnapshot(conn)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            await conn.close()

    async def _write_loop(self) -> None:
        assert self._writer is not None
        conn = self._writer
        stopping = False
        try:
            while not stopping:
                self._loop_waiting = True
                try:
                    first = await self._queue.get()
                finally:
                    self._loop_waiting = False
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._batch_max and not self._queue.empty():
                    job = self._queue.get_nowait()
                    if job is None:
                        stopping = True  # finish this batch, then stop
                        break
                    batch.append(job)
                await self._exclusively(conn, batch)
        except BaseException:
            # Cancelled (or worse): nothing more will run, so nobody may wait for it.
            self._fail_queued(DatabaseError("the SQLite writer has stopped"))
            raise

    async def _run_batch(self, conn: aiosqlite.Connection, batch: list[_Job]) -> None:
        batch = [job for job in batch if not job.future.done()]  # callers that gave up
        if not batch:
            return
        started = time.perf_counter()
        outcomes: list[tuple[bool, Any]] = []
        committed = False
        try:
            if len(batch) == 1:
                outcomes.append(await self._run_alone(conn, batch[0]))
                committed = outcomes[0][0]
            else:
                outcomes = await self._run_several(conn, batch)
                committed = True
        except Exception as exc:  # sqlite3.Error, or aiosqlite's own on a dead connection
            log.error("sqlite batch of %d (%s...) failed to commit: %s", len(batch), batch[0].name, exc)
            await self._rollback(conn)
            error = _translate(exc) if isinstance(exc, sqlite3.Error) else DatabaseError(str(exc))
            outcomes = [(False, error) for _ in batch]
        except BaseException:
            await self._rollback(conn)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(DatabaseError("the SQLite writer was stopped mid-batch"))
            raise
        self._record(committed, len(batch), started, batch[0].name)
        for job, outcome in zip(batch, outcomes):
            _answer(job.future, outcome)

    def _record(self, committed: bool, size: int, started: float, name: str) -> None:
        """Counts for /metrics, and a warning for a batch slow enough for users to notice."""
        if committed:
            self.batches_committed += 1
            self.last_batch_size = size
        elapsed = time.perf_counter() - started
        if elapsed > 0.5:
            log.warning("slow sqlite batch: %d transactions (%s...) took %.3fs", size, name, elapsed)

    async def _run_alone(self, conn: aiosqlite.Connection, job: _Job) -> tuple[bool, Any]:
        """A lone transaction (the send path's usual case) needs no savepoint: BEGIN goes with
        its first statement and COMMIT with its last writes, so a send batch costs a few trips
        to the connection's thread, not one per statement."""
        if job.on_thread:
            return await _attempt_on_thread(conn, job, "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",))
        outcome = await _attempt(job, _SqliteTx(conn, first=("BEGIN IMMEDIATE",)), "COMMIT")
        if not outcome[0]:
            await self._rollback(conn)
        return outcome

    async def _run_several(self, conn: aiosqlite.Connection, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """Each transaction in its own savepoint, so that one failing rolls back alone."""
        outcomes: list[tuple[bool, Any]] = []
        await conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            if job.on_thread:
                outcomes.append(await _attempt_on_thread(conn, job, "SAVEPOINT job", "RELEASE job",
                                                         ("ROLLBACK TO job", "RELEASE job")))
                continue
            tx = _SqliteTx(conn, first=("SAVEPOINT job",))
            outcome = await _attempt(job, tx, "RELEASE job")
            if not outcome[0] and tx.started:  # else nothing ran: there is no savepoint to roll back to
                await conn.execute("ROLLBACK TO job")
                await conn.execute("RELEASE job")
            outcomes.append(outcome)
        await conn.execute("COMMIT")
        return outcomes

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        try:
            await conn.execute("ROLLBACK")
        except (sqlite3.Error, ValueError):
            pass  # no transaction was open, or the connection is gone
