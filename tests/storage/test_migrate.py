"""Numbered migrations on both databases: applying, re-running, refusing a newer schema."""

from __future__ import annotations

import asyncio

import pytest

from lucky_server.clock import FakeClock
from lucky_server.storage import Database, DatabaseError, UndefinedTable, open_database
from lucky_server.storage import migrate as migrate_module
from lucky_server.storage.migrate import (
    SchemaBehind,
    SchemaTooNew,
    check_compatible,
    current_version,
    migrate,
    status,
)
from lucky_server.storage.schema import Migration, load_migrations


async def versions(db: Database) -> list[int]:
    rows = await db.fetch_all("SELECT version FROM schema_version ORDER BY version")
    return [int(r["version"]) for r in rows]


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    migrations = load_migrations()
    assert migrations, "there is at least the accounts migration"
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "accounts"


async def test_a_fresh_database_migrates_to_the_latest(db: Database, clock: FakeClock) -> None:
    latest = len(load_migrations())
    assert await current_version(db) == 0
    applied = await migrate(db, clock.now_ms())
    assert [m.version for m in applied] == list(range(1, latest + 1))
    state = await status(db)
    assert (state.current, state.latest, state.pending) == (latest, latest, 0)
    await check_compatible(db)
    rows = await db.fetch_all("SELECT version, name, applied_at FROM schema_version ORDER BY version")
    assert rows[0] == {"version": 1, "name": "accounts", "applied_at": clock.now_ms()}
    # The schema is usable: the accounts tables exist and are empty.
    assert await db.fetch_one("SELECT COUNT(*) AS n FROM users") == {"n": 0}
    assert await db.fetch_one("SELECT COUNT(*) AS n FROM refresh_tokens") == {"n": 0}


async def test_migrating_again_applies_nothing(db: Database, clock: FakeClock) -> None:
    first = await migrate(db, clock.now_ms())
    clock.advance(60)
    assert await migrate(db, clock.now_ms()) == []
    assert await versions(db) == [m.version for m in first]
    # The first run's timestamps are untouched.
    row = await db.fetch_one("SELECT MAX(applied_at) AS at FROM schema_version")
    assert row is not None and int(row["at"]) == clock.now_ms() - 60_000


async def test_a_new_database_is_behind(db: Database) -> None:
    state = await status(db)
    assert (state.current, state.pending) == (0, state.latest)
    with pytest.raises(SchemaBehind, match="lucky migrate"):
        await check_compatible(db)


async def test_a_database_newer_than_the_code_is_refused(db: Database, clock: FakeClock) -> None:
    latest = len(load_migrations())
    await migrate(db, clock.now_ms())
    await db.execute("from_the_future", "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                     (latest + 1, "from_the_future", clock.now_ms()))
    with pytest.raises(SchemaTooNew, match=f"v{latest + 1}"):
        await check_compatible(db)
    with pytest.raises(SchemaTooNew):
        await migrate(db, clock.now_ms())
    assert await versions(db) == list(range(1, latest + 2))


async def test_a_newer_empty_database_gets_no_tables(db: Database, clock: FakeClock) -> None:
    # Only the version table, at a version this code does not know: migrate touches nothing.
    await db.execute("version_table", "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                                      "name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
    await db.execute("future", "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                     (999, "future", 0))
    with pytest.raises(SchemaTooNew):
        await migrate(db, clock.now_ms())
    with pytest.raises(UndefinedTable):
        await db.fetch_one("SELECT COUNT(*) AS n FROM users")


async def test_a_failing_migration_leaves_no_trace(db: Database, clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = load_migrations()
    broken = Migration(len(real) + 1, "broken", (
        "CREATE TABLE half_done (id BIGINT PRIMARY KEY)",
        "CREATE TABLE half_done (id BIGINT PRIMARY KEY)",  # fails: the table exists
    ))
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: [*real, broken])
    with pytest.raises(DatabaseError):
        await migrate(db, clock.now_ms())
    # Every earlier migration is kept, the broken one is wholly undone.
    assert await versions(db) == [m.version for m in real]
    with pytest.raises(UndefinedTable):
        await db.fetch_one("SELECT COUNT(*) AS n FROM half_done")
    with pytest.raises(SchemaBehind):
        await check_compatible(db)


async def test_a_closed_database_is_an_error_not_version_zero(database_url: str) -> None:
    db = open_database(database_url)
    with pytest.raises(DatabaseError) as caught:
        await status(db)
    assert not isinstance(caught.value, (SchemaBehind, UndefinedTable))


async def test_concurrent_migrations_from_two_databases_apply_each_once(database_url: str,
                                                                        clock: FakeClock) -> None:
    # Two nodes starting at once against one new database (on PostgreSQL: one new schema).
    first, second = open_database(database_url), open_database(database_url)
    await asyncio.gather(first.open(), second.open())
    try:
        results = await asyncio.gather(migrate(first, clock.now_ms()), migrate(second, clock.now_ms()))
        latest = len(load_migrations())
        applied = sorted(m.version for run in results for m in run)
        assert applied == list(range(1, latest + 1))
        assert await versions(first) == list(range(1, latest + 1))
        await check_compatible(second)
    finally:
        await asyncio.gather(first.close(), second.close())
