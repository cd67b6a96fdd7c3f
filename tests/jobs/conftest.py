"""Fixtures for the jobs tests: the services of an instance without HTTP (`make_core`), and
the files tests' sites on both blob backends (reused, for the orphaned-blob clean-up)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from lucky_server.clock import FakeClock
from lucky_server.core import Core, open_core

from ..conftest import MakeConfig
from ..files.conftest import make_site, s3_endpoint, site, storage, storage_url  # noqa: F401 - fixtures

MakeCore = Callable[..., AbstractAsyncContextManager[Core]]


@pytest.fixture
def make_core(make_config: MakeConfig, clock: FakeClock) -> MakeCore:
    """`async with make_core(section={...}) as core`: the instance's services on the test's
    database, migrated, on the fake clock; nothing started (no scheduler)."""

    @asynccontextmanager
    async def make(**sections: dict[str, Any]) -> AsyncIterator[Core]:
        async with open_core(make_config(**sections), clock=clock, apply_migrations=True) as core:
            yield core

    return make


# The CLI tests' initialized instance (SQLite, local files, admin `root`), for `lucky jobs` and doctor.
from ..cli.conftest import data_dir, initialized_template  # noqa: E402,F401 - fixtures
