"""Applying the numbered migrations, and refusing a database newer than this code."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .engine import Database, DatabaseError, Tx, UndefinedTable
from .schema import Migration, load_migrations

log = logging.getLogger(__name__)

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)
"""


class SchemaTooNew(DatabaseError):
    """The database was migrated by a newer Lucky; this code must not touch it."""


class SchemaBehind(DatabaseError):
    """The database lacks migrations this code needs; run `lucky migrate`."""


@dataclass(frozen=True)
class SchemaStatus:
    current: int
    latest: int

    @property
    def pending(self) -> int:
        return max(0, self.latest - self.current)


async def current_version(db: Database) -> int:
    """The schema version of the database: 0 for a new one. Other errors propagate, so that
    a database that is down is not mistaken for an empty one."""
    try:
        row = await db.fetch_one("SELECT MAX(version) AS v FROM schema_version")
    except UndefinedTable:
        return 0  # no schema_version table yet: a new database
    return int(row["v"]) if row and row["v"] is not None else 0


async def status(db: Database) -> SchemaStatus:
    return SchemaStatus(await current_version(db), len(load_migrations()))


async def migrate(db: Database, now_ms: int, *, up_to: int | None = None) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; the ones applied.

    With `up_to`, only the migrations up to that version (a backup's rows are restored into
    the schema they were taken from, then the later migrations run).
    """
    migrations = load_migrations()
    latest = len(migrations)
    if up_to is not None:
        migrations = migrations[:up_to]
    applied: list[Migration] = []

    async def ensure_table(tx: Tx) -> None:
        await db.lock_for_migration(tx)
        await tx.execute(_CREATE_VERSION_TABLE)

    await db.transaction("schema_version_table", ensure_table)
    for migration in migrations:

        async def apply(tx: Tx, migration: Migration = migration) -> bool:
            await db.lock_for_migration(tx)
            row = await tx.fetch_one("SELECT MAX(version) AS v FROM schema_version")
            have = int(row["v"]) if row and row["v"] is not None else 0
            if have > latest:
                raise SchemaTooNew(
                    f"the database is at schema v{have}, newer than this Lucky knows (v{latest}): "
                    "upgrade Lucky, or restore a backup taken before the upgrade"
                )
            if have >= migration.version:
                return False
            for statement in migration.statements_for(db.dialect):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_ms),
            )
            return True

        if await db.transaction(f"migrate_v{migration.version:04d}", apply):
            log.info("applied migration v%04d %s", migration.version, migration.name)
            applied.append(migration)
    if not migrations or up_to is not None:
        return applied
    await check_compatible(db)
    return applied


async def check_compatible(db: Database) -> None:
    """Raise unless the database is at exactly the schema this code was written for."""
    state = await status(db)
    if state.current > state.latest:
        raise SchemaTooNew(
            f"the database is at schema v{state.current}, newer than this Lucky knows "
            f"(v{state.latest}): upgrade Lucky, or restore a backup taken before the upgrade"
        )
    if state.current < state.latest:
        raise SchemaBehind(
            f"the database is at schema v{state.current} and this Lucky needs v{state.latest}: "
            "run `lucky migrate`"
        )
