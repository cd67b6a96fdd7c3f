"""Running the app until SIGTERM or SIGINT, then draining: the process side of `lucky serve`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from .app import build_app
from .config import Config

log = logging.getLogger("lucky")


def install_event_loop() -> None:
    """uvloop when it is installed: a faster loop for the same code."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class ServeError(Exception):
    """The server could not start (say, its address is taken); one line for the operator."""


def _bound_port(site: web.TCPSite, asked: int) -> int:
    """The port actually bound: with port 0 the kernel picks it, known only after start."""
    server = site._server
    for sock in getattr(server, "sockets", None) or ():
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return int(sock.getsockname()[1])
    return asked


async def serve(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then drain; raises ServeError if it cannot listen."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Installed before the (slow) start so that a SIGTERM during start-up also drains
    # instead of killing the process half-way through opening the database.
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    app = build_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=config.server.shutdown_timeout_s)
    host = config.server.host
    started = False
    try:
        # setup() opens the services (cleanup_ctx); cleanup() below closes whatever opened,
        # also when setup or the bind fails, so no database thread is left holding the process.
        await runner.setup()
        # No SO_REUSEADDR on purpose: a second server on a port already in use must fail.
        site = web.TCPSite(runner, host, config.server.port)
        try:
            await site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise ServeError(f"cannot listen on {host}:{config.server.port}: {reason}") from None
        shown = f"[{host}]" if ":" in host else host
        log.info("listening on http://%s:%d", shown, _bound_port(site, config.server.port))
        started = True
        await stop.wait()
        log.info("draining: no new connections; finishing writes and closing sockets")
    finally:
        # Stops accepting, runs on_shutdown (sockets closed with 1001), waits for handlers,
        # then cleanup_ctx closes the services: pending database writes finish before exit.
        await runner.cleanup()
        for sig in signals:
            loop.remove_signal_handler(sig)
        if started:
            log.info("stopped")
