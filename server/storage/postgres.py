"""PostgreSQL through psycopg 3 (async) and psycopg-pool.

Stores write `?` placeholders; this engine turns them into psycopg's `%s`. A `schema` query
parameter in the URL (postgresql://host/db?schema=lucky) puts Lucky's tables in their own
schema, created on first use: several instances, or parallel test runs, can share a database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .engine import Database, DatabaseError, Params, Row, Tx, UniqueViolation

log = logging.getLogger(__name__)
T = TypeVar("T")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@lru_cache(maxsize=1024)
def _to_psycopg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _translate(exc: psycopg.Error) -> DatabaseError:
    if isinstance(exc, pg_errors.UniqueViolation):
        return UniqueViolation(str(exc))
    return DatabaseError(str(exc).strip())


class _PgTx(Tx):
    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cursor = await self._conn.execute(_to_psycopg(sql), params)
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            async with self._conn.cursor() as cursor:
                await cursor.executemany(_to_psycopg(sql), list(rows))
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            cursor = await self._conn.execute(_to_psycopg(sql), params)
            return await cursor.fetchone()
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            cursor = await self._conn.execute(_to_psycopg(sql), params)
            return await cursor.fetchall()
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
        scheme = "postgresql"
        self._conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))
        host = parts.hostname or "localhost"
        self._where = f"postgresql {host}:{parts.port or 5432}{parts.path}" + (
            f" schema {self.schema}" if self.schema else ""
        )
        self._pool_min = pool_min
        self._pool_max = pool_max
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] | None = None

    @property
    def description(self) -> str:
        return self._where

    async def open(self) -> None:
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if self.schema:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            except psycopg.Error as exc:
                raise DatabaseError(f"cannot reach {self._where}: {str(exc).strip()}") from exc
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

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Row]]:
        if self._pool is None:
            raise DatabaseError("the database is not open")
        return self._pool

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._require_pool().connection() as conn:
            return await _PgTx(conn).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._require_pool().connection() as conn:
            return await _PgTx(conn).fetch_all(sql, params)

    async def transaction(self, name: str, fn: Callable[[Tx], Awaitable[T]]) -> T:
        try:
            async with self._require_pool().connection() as conn:
                async with conn.transaction():
                    return await fn(_PgTx(conn))
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def lock_for_migration(self, tx: Tx) -> None:
        # Two nodes starting together must not both apply the same migration.
        await tx.fetch_one("SELECT pg_advisory_xact_lock(7100271)")
