"""Fixtures for the storage tests: a real Database on each backend, empty or migrated."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lucky_server.clock import FakeClock
from lucky_server.storage import Database, open_database
from lucky_server.storage.migrate import migrate


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An open, empty database on the test's backend (no migrations applied)."""
    database = open_database(database_url)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def migrated_db(db: Database, clock: FakeClock) -> Database:
    """The same database with every migration applied."""
    await migrate(db, clock.now_ms())
    return db
