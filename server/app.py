"""`build_app(config)`: the aiohttp application around the services `open_core` builds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from lucky_console.app import setup_console

from .auth.device_routes import routes as device_routes
from .auth.qr_routes import routes as qr_routes
from .auth.routes import routes as auth_routes
from .auth.sms_routes import routes as sms_routes
from .calls.routes import routes as call_routes
from .chat.gateway import routes as gateway_routes
from .chat.routes import routes as conversation_routes
from .chat.service import ChatService
from .clock import Clock
from .config import Config
from .core import Core, open_core
from .files.routes import routes as file_routes
from .jobs.routes import routes as job_routes
from .jobs.scheduler import scheduled_jobs
from .jobs.service import refresh_job_metrics
from .links.routes import routes as link_routes
from .keys import AVATARS, CHAT, CORE, FRIENDS, GROUPS, METRICS, SAMPLER, SEARCH, STATIC_FILES
from .metrics import Metrics
from .outbox.service import OutboxService
from .ops.routes import routes as ops_routes
from .ops.sampler import Reading, Sampler
from .releases.routes import admin_routes as release_admin_routes
from .releases.routes import routes as release_routes
from .search.routes import routes as search_routes
from .social.group_routes import routes as group_routes
from .social.routes import routes as friend_routes
from .users.routes import routes as user_routes
from .web.connections import body_deadline, handler_args
from .web.middleware import auth_middleware, error_middleware
from .web.static import PackagedFiles
from .web.static import routes as static_routes
from .webchat.routes import routes as chat_page_routes
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

ROUTE_TABLES = (ops_routes, auth_routes, user_routes, conversation_routes, gateway_routes, friend_routes,
                group_routes, search_routes, file_routes, job_routes, link_routes, release_routes, release_admin_routes,
                static_routes, chat_page_routes, call_routes, qr_routes, device_routes, sms_routes)
MAX_JSON_BODY = 1024 * 1024


def build_app(config: Config, *, clock: Clock | None = None, apply_migrations: bool = True) -> web.Application:
    # error_middleware outermost: it renders auth_middleware's 401 like any other error.
    # body_deadline and handler_args (the head's timeout, a log without request bytes):
    # what a slow or malformed client may cost (web/connections.py).
    app = web.Application(middlewares=[error_middleware, body_deadline(config.server.body_timeout_s), auth_middleware],
                          client_max_size=MAX_JSON_BODY, handler_args=handler_args(config.server))
    metrics = Metrics()
    app[METRICS] = metrics
    app[STATIC_FILES] = PackagedFiles()  # /static/ and the chat page at /

    async def core_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_core(config, clock=clock, apply_migrations=apply_migrations) as core:
            app[CORE] = core
            # The same objects under typed keys, for handlers; built once, by open_core.
            app[CHAT] = core.chat
            app[FRIENDS] = core.friends
            app[GROUPS] = core.groups
            app[AVATARS] = core.avatars
            app[SEARCH] = core.search
            app[SAMPLER] = sampler = Sampler(core.clock, lambda: Reading(
                core.chat.sessions.count(), core.chat.sessions.online_users(), core.chat.writer.messages_stored),
                config.data_dir)
            async with _serving(core, metrics, sampler):
                yield

    async def close_sockets(app: web.Application) -> None:
        core = app.get(CORE)
        if core is not None:
            core.qr.stop_waiting()  # QR long-polls answer now, not after their wait
        chat = app.get(CHAT)
        if chat is None:
            return
        for session in list(chat.sessions.all()):
            session.transport.close(WSCloseCode.GOING_AWAY, "server shutting down")

    app.cleanup_ctx.append(core_ctx)
    app.on_shutdown.append(close_sockets)
    for table in ROUTE_TABLES:
        table.add_to(app)
    setup_console(app)  # /console: its pages and templates (lucky_console)
    return app


@contextlib.asynccontextmanager
async def _serving(core: Core, metrics: Metrics, sampler: Sampler) -> AsyncIterator[None]:
    """What only a server runs: the chat writer and sweeper, the revocation feed, the gauges,
    the console dashboard's sampler."""
    chat = core.chat
    metrics.refreshers.append(lambda: _chat_gauges(metrics, chat))
    metrics.refreshers.append(lambda: refresh_job_metrics(metrics, core.db))
    metrics.refreshers.append(lambda: _outbox_gauges(metrics, core.outbox))
    await core.bus.start()  # joins the other nodes (Redis); raises if Redis cannot be reached now
    await chat.start()
    await core.calls.start()  # the sweep of invite timeouts and disconnected parties
    await core.outbox.start()  # the push sender, woken by each commit that wrote deliveries
    await core.links.visits.start()  # short links' visits, written every links.flush_s
    try:
        every_s = core.config.auth.revocation_poll_s
        watching = asyncio.create_task(core.auth.revocations.poll_forever(every_s)) if every_s else None
        sampling = asyncio.create_task(sampler.run_forever())
        # releases published by another process (the CLI) refresh the update check's cache
        poll_s = core.config.releases.poll_s
        releases = asyncio.create_task(core.releases.offers.watch_forever(poll_s)) if poll_s else None
        try:
            async with scheduled_jobs(core):  # stopped first: a job may still use chat or the outbox
                yield
        finally:
            for task in (watching, sampling, releases):
                await cancel_and_wait(task)
    finally:
        # Sockets are closed by on_shutdown first; queued sends are stored before the
        # database closes.
        try:
            await core.calls.stop()  # first: a sweep may be storing a call's message through chat
            await chat.stop()
        finally:
            try:
                await core.outbox.stop()
            finally:
                try:
                    await core.links.visits.stop()  # the visits counted since the last flush
                finally:
                    await core.bus.stop()  # after chat: its last pushes go out first


async def _chat_gauges(metrics: Metrics, chat: ChatService) -> None:
    metrics.connections.set(chat.sessions.count())
    metrics.online_users.set(chat.sessions.online_users())
    metrics.messages_stored.set(chat.writer.messages_stored)
    metrics.messages_dispatched.set(chat.messages_delivered)
    metrics.frames_pushed.set(chat.sessions.pushed_frames)
    metrics.resent.set(chat.resent)
    metrics.send_queue.set(chat.writer.depth)


async def _outbox_gauges(metrics: Metrics, outbox: OutboxService) -> None:
    for status in await outbox.status():
        metrics.outbox.labels(status.kind, "pending").set(status.pending)
        metrics.outbox.labels(status.kind, "failed").set(status.failed)
        metrics.outbox_oldest.labels(status.kind).set((status.oldest_pending_ms or 0) / 1000)
