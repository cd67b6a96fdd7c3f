"""`build_app(config)`: the aiohttp application, wired once from the config."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .auth.routes import routes as auth_routes
from .clock import Clock
from .config import Config
from .core import open_core
from .keys import CORE, METRICS
from .metrics import Metrics
from .ops.routes import routes as ops_routes
from .users.routes import routes as user_routes
from .web.middleware import error_middleware

log = logging.getLogger(__name__)

ROUTE_TABLES = (ops_routes, auth_routes, user_routes)
MAX_JSON_BODY = 1024 * 1024


def build_app(config: Config, *, clock: Clock | None = None, apply_migrations: bool = True) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_JSON_BODY)
    app[METRICS] = Metrics()

    async def core_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_core(config, clock=clock, apply_migrations=apply_migrations) as core:
            app[CORE] = core
            yield

    app.cleanup_ctx.append(core_ctx)
    for table in ROUTE_TABLES:
        table.add_to(app)
    return app
