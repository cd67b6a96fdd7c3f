"""The `Database` interface that stores are written against, and the factory for a URL."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

Row = dict[str, Any]
Params = Sequence[Any]
T = TypeVar("T")


class DatabaseError(Exception):
    """The database could not do what was asked (down, unreachable, misconfigured)."""


class UniqueViolation(DatabaseError):
    """An insert or update broke a unique constraint; stores turn this into a `conflict`."""


class UndefinedTable(DatabaseError):
    """A statement named a table that does not exist (a database not yet migrated)."""


class Tx(abc.ABC):
    """One open transaction. Statements use `?` placeholders on both databases.

    A `?` inside a quoted literal or identifier is text, not a placeholder. A statement
    that fails ends the transaction on both databases (PostgreSQL's rule): every later
    statement in it raises DatabaseError, so catching UniqueViolation and carrying on does
    not work; write an `ON CONFLICT` upsert instead, or let the error end the transaction.
    """

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter row."""

    @abc.abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of a query."""


def as_columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column, for `unnest(?::bigint[], ?::text[], ...)` on PostgreSQL: a
    batch goes as arrays in one fixed statement (one round trip, parsed once and cached)
    instead of one statement per row or a VALUES list whose text changes with its length."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


@dataclass(frozen=True)
class Column:
    """A column as both databases can describe it: `kind` is boolean, integer, text or other
    (SQLite's 0/1 and PostgreSQL's true/false are both `boolean`)."""

    name: str
    kind: str


@dataclass(frozen=True)
class TableShape:
    """A table, its columns in order, and the tables its foreign keys point to."""

    name: str
    columns: tuple[Column, ...]
    references: tuple[str, ...] = ()


def column_kind(declared: str) -> str:
    """The portable kind of a declared column type (SQLite's declaration or PostgreSQL's data_type)."""
    lowered = declared.strip().lower()
    if lowered in {"boolean", "bool"}:
        return "boolean"
    if lowered in {"bigint", "integer", "int", "smallint", "int8", "int4", "int2"}:
        return "integer"
    if lowered in {"text", "character varying", "varchar"} or lowered.startswith("varchar"):
        return "text"
    return "other"


class Snapshot(abc.ABC):
    """One consistent, read-only view of every table (for backups): what the database held
    at one instant, however long reading it takes, while writes go on."""

    @abc.abstractmethod
    async def tables(self) -> list[TableShape]:
        """Every table of Lucky's schema (not the engine's own, nor a virtual table's shadows)."""

    @abc.abstractmethod
    def rows(self, table: TableShape, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The table's rows in batches of at most `batch`, values in `table.columns` order;
        streamed (a server-side cursor), never the whole table in memory."""


def quote_name(name: str) -> str:
    """A table or column name as a quoted identifier (names come from the catalog)."""
    return '"' + name.replace('"', '""') + '"'


class Database(abc.ABC):
    """A connection to SQLite or PostgreSQL: reads, named write transactions, health."""

    dialect: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect; raises DatabaseError with a readable reason when it cannot."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish the transactions already asked for, refuse new ones, and disconnect."""

    @abc.abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """Read the first row of a query (sees every committed write)."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Read every row of a query (sees every committed write)."""

    @abc.abstractmethod
    async def transaction(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `fn` in one write transaction and return its result once committed.

        `name` shows in logs and metrics. If `fn` raises, nothing it wrote is kept and the
        exception propagates. On SQLite, concurrent transactions are committed together by
        one writer (group commit); each still succeeds or fails on its own.
        `fn` must not start another transaction on the same database: on SQLite it would
        wait for the writer that is running `fn`, forever.
        """

    async def transaction_on_thread(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """`transaction`, for an `fn` that awaits nothing but its `Tx` and touches nothing but
        its own arguments: SQLite runs all of it (BEGIN, the statements, the Python between
        them, COMMIT) in one call on its connection's thread instead of a trip there and back
        per statement whose result is read. The send batch is such a function.

        Because `fn` may run on another thread, it must not read or change state the event
        loop changes (take ids, look at sessions) and must not await anything else: SQLite
        fails such a transaction (RuntimeError, nothing kept). A database with no thread of
        its own (PostgreSQL) runs it as `transaction`.
        """
        return await self.transaction(name, fn)

    def start_on_thread(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> asyncio.Future[T]:
        """`transaction_on_thread`, started now, its outcome to be awaited later: the send
        writer starts a batch and then answers the one before while it is stored.

        SQLite hands an idle connection the transaction before returning, and its outcome
        reaches the loop in one callback (not a task's wake-up and then its awaiter's): under
        load every hop waits for a whole turn of the busy loop. Elsewhere it is a task."""
        return asyncio.ensure_future(self.transaction_on_thread(name, fn))

    async def execute(self, name: str, sql: str, params: Params = ()) -> int:
        """One statement in its own write transaction; the number of rows it changed."""

        async def run(tx: Tx) -> int:
            return await tx.execute(sql, params)

        return await self.transaction(name, run)

    @abc.abstractmethod
    async def lock_for_migration(self, tx: Tx) -> None:
        """Serialize schema migrations between nodes that start at once."""

    async def ping(self) -> None:
        """Raise DatabaseError unless a trivial query answers."""
        await self.fetch_one("SELECT 1 AS ok")

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where this database is, without secrets; for `lucky doctor` and logs."""

    @abc.abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Snapshot]:
        """A consistent read-only view of the whole database, on a connection of its own, for
        as long as the context lasts (SQLite: one read transaction; PostgreSQL: REPEATABLE
        READ READ ONLY). Writers are not blocked."""

    async def table_shapes(self) -> list[TableShape]:
        """The tables this database holds now (empty for a new one)."""
        async with self.snapshot() as view:
            return await view.tables()

    async def insert_rows(self, tx: Tx, table: TableShape, columns: Sequence[str],
                          rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows into `table` (a shape read from this database; `columns` must be its
        own), values already of the column types: the restore of a backup."""
        known = {c.name for c in table.columns}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise DatabaseError(f"table {table.name} has no column {unknown[0]}")
        names = ", ".join(quote_name(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        await tx.executemany(f"INSERT INTO {quote_name(table.name)} ({names}) VALUES ({marks})", rows)

    async def drop_tables(self, names: Sequence[str]) -> None:
        """Drop these tables (a restore that failed half-way undoes the tables it created)."""

        async def drop(tx: Tx) -> None:
            for name in names:
                await tx.execute(f"DROP TABLE IF EXISTS {quote_name(name)}")

        await self.transaction("drop_tables", drop)


def open_database(url: str, *, readers: int = 2, pool_min: int = 1, pool_max: int = 10,
                  batch_max: int = 256) -> Database:
    """The Database for a `sqlite:///path` or `postgresql://...` URL (not yet opened)."""
    if url.startswith("sqlite:"):
        from .sqlite import SqliteDatabase

        return SqliteDatabase(url, readers=readers, batch_max=batch_max)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresDatabase

        return PostgresDatabase(url, pool_min=pool_min, pool_max=pool_max)
    raise DatabaseError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
