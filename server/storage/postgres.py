"""PostgreSQL through psycopg 3 (async) and psycopg-pool.

Stores write `?` placeholders; this engine turns them into psycopg's `%s`. A `schema` query
parameter in the URL (postgresql://host/db?schema=lucky) puts Lucky's tables in their own
schema, created on first use: several instances, or parallel test runs, can share a database.
`close()` waits for the transactions already asked for, and refuses new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

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
from .pg_arrays import with_array_literals

log = logging.getLogger(__name__)
T = TypeVar("T")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# A quoted literal, quoted identifier or comment (left as it is), else a `?` or a `%`.
_SQL_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|--[^\n]*|/\*.*?\*/|\?|%", re.DOTALL)


def _psycopg_token(match: re.Match[str]) -> str:
    text = match.group()
    if text == "?":
        return "%s"
    return text.replace("%", "%%")  # psycopg reads `%` everywhere, even inside quotes


@lru_cache(maxsize=1024)
def _to_psycopg(sql: str) -> str:
    """Turn `?` placeholders into `%s`; a `?` in a literal, identifier or comment is text.

    (So PostgreSQL's jsonb `?` operators cannot be written; use jsonb_exists() instead.)
    """
    return _SQL_TOKEN.sub(_psycopg_token, sql)


def _translate(exc: psycopg.Error) -> DatabaseError:
    if isinstance(exc, pg_errors.UniqueViolation):
        return UniqueViolation(str(exc).strip())
    if isinstance(exc, pg_errors.UndefinedTable):
        return UndefinedTable(str(exc).strip())
    return DatabaseError(str(exc).strip())


class _PgTx(Tx):
    """Statements on one pooled connection, PostgreSQL's half of the `Tx` port.

    Each statement whose result is read is a round trip to PostgreSQL, and the send batch is
    about ten statements, so a transaction saves trips as SQLite's does: `executemany` (whose
    result nobody reads) and BEGIN are held, and sent in one pipeline (psycopg's pipeline mode:
    every statement sent at once, the results read back together) with the next statement
    whose result is awaited, or with COMMIT. A held write that fails fails that later call,
    with the write's own error (UniqueViolation stays UniqueViolation); the server skips what
    follows it in the pipeline (COMMIT too), and the transaction is rolled back whole.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Row], *, begin: bool = False) -> None:
        self._conn = conn
        # (statement, its parameter rows), or None for a statement without parameters
        self._held: list[tuple[str, list[Params] | None]] = [("BEGIN", None)] if begin else []
        self.started = not begin  # whether BEGIN has been sent
        self.failed: DatabaseError | None = None

    def raise_if_failed(self) -> None:
        """Before any statement, and after the transaction's code returned: an error that code
        caught and ignored still fails the transaction (PostgreSQL's COMMIT would quietly roll
        back, and the caller must not hear success)."""
        if self.failed is not None:
            raise DatabaseError(f"the transaction was aborted by an earlier error: {self.failed}")

    async def _send(self, sql: str, params: Params) -> psycopg.AsyncCursor[Row]:
        """Send the held statements, then `sql`; its cursor, holding its result."""
        self.raise_if_failed()
        held, self._held = self._held, []
        self.started = True
        cursor = self._conn.cursor()
        failure: psycopg.Error | None = None
        try:
            if held:
                async with self._conn.pipeline():
                    try:
                        for held_sql, rows in held:
                            # A cursor each: the pipeline attaches every statement's result (and
                            # error) to its own cursor as it reads them back.
                            if rows is None:
                                await self._conn.cursor().execute(held_sql)
                            else:
                                await self._conn.cursor().executemany(held_sql, rows)
                        await cursor.execute(sql, params)
                    except psycopg.Error as exc:
                        # Kept, not raised through the block: leaving the pipeline reads the
                        # rest ("pipeline aborted"), which must not replace (or log over) it.
                        failure = exc
            else:
                await cursor.execute(sql, params)
        except psycopg.Error as exc:
            failure = failure or exc
        if failure is not None:
            # The first error read back is the first statement that failed: the server
            # answers those after it "pipeline aborted", and skips them (COMMIT too).
            self.failed = _translate(failure)
            raise self.failed from failure
        return cursor

    async def _fetch(self, sql: str, params: Params) -> list[Row]:
        cursor = await self._send(_to_psycopg(sql), with_array_literals(params))
        try:
            return await cursor.fetchall()
        except psycopg.Error as exc:
            self.failed = _translate(exc)
            raise self.failed from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        return (await self._send(_to_psycopg(sql), with_array_literals(params))).rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.raise_if_failed()
        batch = list(rows)
        if batch:
            self._held.append((_to_psycopg(sql), [with_array_literals(row) for row in batch]))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._fetch(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._fetch(sql, params)

    async def commit(self) -> None:
        """Send what is held, then COMMIT, in one pipeline; nothing if nothing was written."""
        self.raise_if_failed()
        if not self.started and len(self._held) == 1:
            self._held = []  # only the held BEGIN: fn ran no statement, there is nothing to end
            return
        cursor = await self._send("COMMIT", ())
        if cursor.statusmessage == "ROLLBACK":
            # PostgreSQL answers COMMIT of a failed transaction with a rollback, not an error.
            raise DatabaseError("the transaction was aborted by a statement that failed")


_SHAPES = """
SELECT c.table_name, c.column_name, c.data_type
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position
"""
_REFERENCES = """
SELECT DISTINCT src.relname AS table_name, dst.relname AS ref
FROM pg_constraint k
JOIN pg_class src ON src.oid = k.conrelid
JOIN pg_class dst ON dst.oid = k.confrelid
WHERE k.contype = 'f' AND src.relnamespace = current_schema()::regnamespace
"""


class _PgSnapshot(Snapshot):
    """Reads in one REPEATABLE READ READ ONLY transaction on a connection of its own: every
    query sees the database as it was at the first one."""

    def __init__(self, conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        self._conn = conn

    async def tables(self) -> list[TableShape]:
        try:
            columns: dict[str, list[Column]] = {}
            for table, column, kind in await (await self._conn.execute(_SHAPES)).fetchall():
                columns.setdefault(str(table), []).append(Column(str(column), column_kind(str(kind))))
            references: dict[str, set[str]] = {}
            for table, ref in await (await self._conn.execute(_REFERENCES)).fetchall():
                references.setdefault(str(table), set()).add(str(ref))
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return [TableShape(name, tuple(cols), tuple(sorted(references.get(name, ()))))
                for name, cols in sorted(columns.items())]

    async def rows(self, table: TableShape, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        names = ", ".join(quote_name(c.name) for c in table.columns)
        try:
            # A named (server-side) cursor: the rows come `batch` at a time.
            async with self._conn.cursor(name="lucky_snapshot") as cursor:
                await cursor.execute(f"SELECT {names} FROM {quote_name(table.name)}")
                while True:
                    rows = await cursor.fetchmany(batch)
                    if not rows:
                        return
                    yield rows
        except psycopg.Error as exc:
            raise _translate(exc) from exc


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_min: int = 1, pool_max: int = 10) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.schema = query.pop("schema", "")
        if self.schema and not _SCHEMA_NAME.match(self.schema):
            raise DatabaseError(f"schema name {self.schema!r} must match [a-z_][a-z0-9_]*")
        try:
            port = parts.port
        except ValueError:
            raise DatabaseError(f"the port in the PostgreSQL URL is not a number: {parts.netloc.rpartition('@')[2]!r}") from None
        scheme = "postgresql"
        self._conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))
        host = parts.hostname or "localhost"
        self._where = f"postgresql {host}:{port or 5432}{parts.path}" + (
            f" schema {self.schema}" if self.schema else ""
        )
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] | None = None
        self._closing = False
        self._active = 0  # transactions in flight, which close() waits for
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def description(self) -> str:
        return self._where

    async def open(self) -> None:
        self._closing = False
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        try:
            # One direct connection first: it fails at once with the server's reason, where
            # the pool would retry quietly until its timeout.
            async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True,
                                                             connect_timeout=10) as conn:
                if self.schema:
                    await self._create_schema(conn)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot reach {self._where}: {str(exc).strip()}") from exc
        if self.schema:
            kwargs["options"] = f"-c search_path={self.schema}"
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
            self._conninfo,
            min_size=self._pool_min,
            max_size=self._pool_max,
            kwargs=kwargs,
            open=False,
            name="lucky",
        )
        try:
            await pool.open(wait=True, timeout=10)
        except Exception as exc:  # psycopg_pool raises PoolTimeout with the cause logged
            await pool.close()
            raise DatabaseError(f"cannot reach {self._where}: {exc}") from exc
        self._pool = pool

    async def _create_schema(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        except (pg_errors.UniqueViolation, pg_errors.DuplicateSchema):
            # Two nodes opening a new schema at once: IF NOT EXISTS is not atomic, and the
            # loser of the race gets this; the schema exists either way.
            pass

    async def close(self) -> None:
        self._closing = True  # transaction() refuses from now on
        await self._idle.wait()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Row]]:
        if self._pool is None:
            raise DatabaseError("the database is not open")
        return self._pool

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            async with self._require_pool().connection() as conn:
                return await _PgTx(conn).fetch_one(sql, params)
        except psycopg.Error as exc:  # the pool's own errors: timeout, closed
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            async with self._require_pool().connection() as conn:
                return await _PgTx(conn).fetch_all(sql, params)
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def transaction(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> T:
        if self._closing:
            raise DatabaseError("the database is not open")
        pool = self._require_pool()
        self._active += 1
        self._idle.clear()
        try:
            async with pool.connection() as conn:
                tx = _PgTx(conn, begin=True)
                try:
                    result = await fn(tx)
                    await tx.commit()
                except BaseException:
                    if tx.started:
                        # After a failed statement the transaction is aborted (or, for a
                        # failed COMMIT, already over: rollback() then sends nothing).
                        with contextlib.suppress(psycopg.Error):
                            await conn.rollback()
                    raise
                return result
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        # Its own connection, not one of the pool's: a long backup must not hold a slot
        # that requests need.
        options: dict[str, Any] = {"options": f"-c search_path={self.schema}"} if self.schema else {}
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, connect_timeout=10, row_factory=tuple_row,
                                                         **options)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot reach {self._where}: {str(exc).strip()}") from exc
        try:
            await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            await conn.set_read_only(True)
            await conn.execute("SELECT 1")  # begins the transaction: the snapshot is taken here
            yield _PgSnapshot(conn)
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        finally:
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
            await conn.close()

    async def lock_for_migration(self, tx: Tx) -> None:
        # Two nodes starting together must not both apply the same migration. The lock is
        # per schema, so instances in other schemas of the same database do not wait.
        await tx.fetch_one("SELECT pg_advisory_xact_lock(7100271, hashtext(current_schema()))")
