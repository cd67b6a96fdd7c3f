"""The composition root of the services: everything built once from the config.

`open_core` is used by `build_app` (the server) and by the CLI (which runs the same services
without HTTP), so a rule lives in one service whichever edge calls it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .auth.keyring import Keyring
from .auth.service import AuthService
from .blobs import open_blob_store
from .clock import Clock
from .config import Config
from .files.service import FileService
from .ids import Snowflake
from .storage import Database, open_database
from .storage.migrate import check_compatible, migrate
from .social.directory import GroupDirectory
from .users.service import UserService

log = logging.getLogger(__name__)


@dataclass
class Core:
    config: Config
    clock: Clock
    ids: Snowflake
    db: Database
    keyring: Keyring
    auth: AuthService
    users: UserService
    groups: GroupDirectory
    files: FileService


def database_for(config: Config) -> Database:
    return open_database(
        config.database_url,
        readers=config.database.sqlite_readers,
        pool_min=config.database.pool_min,
        pool_max=config.database.pool_max,
        batch_max=config.database.batch_max,
    )


@asynccontextmanager
async def open_core(config: Config, *, clock: Clock | None = None, apply_migrations: bool = False,
                    worker_id: int = 0) -> AsyncIterator[Core]:
    """Open the database and build every service; close them on exit.

    With `apply_migrations` pending migrations are applied first; otherwise a database at
    another schema version stops the start with a message saying what to do.
    """
    clock = clock or Clock()
    keyring = Keyring.load(config.secrets_dir)
    db = database_for(config)
    await db.open()
    try:
        if apply_migrations:
            await migrate(db, clock.now_ms())
        else:
            await check_compatible(db)
        ids = Snowflake(worker_id, clock)
        auth = AuthService(db, config.auth, keyring, clock, ids)
        users = UserService(db, auth, clock)
        files = FileService(db, open_blob_store(config.storage_url), config.files, clock, ids,
                            keyring.url_signing_key, config.public_url)
        users.files = files
        await files.open()
        try:
            yield Core(config, clock, ids, db, keyring, auth, users, GroupDirectory(db), files)
        finally:
            auth.close()
            await files.close()
    finally:
        await db.close()
