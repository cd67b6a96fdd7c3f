"""Running the app until SIGTERM or SIGINT, then draining: the process side of `lucky serve`."""

from __future__ import annotations

import asyncio
import logging
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


async def serve(config: Config) -> None:
    app = build_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=config.server.shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port, reuse_address=True)
    await site.start()
    port = config.server.port
    server = site._server  # the bound port is only known here when --port 0 was asked
    if server is not None and getattr(server, "sockets", None):
        for sock in server.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                port = sock.getsockname()[1]
                break
    host = config.server.host
    shown = f"[{host}]" if ":" in host else host
    log.info("listening on http://%s:%d", shown, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("draining: no new connections; finishing writes and closing sockets")
    finally:
        # Stops accepting, runs on_shutdown (sockets closed with 1001), waits for handlers,
        # then cleanup_ctx closes the services: pending database writes finish before exit.
        await runner.cleanup()
        log.info("stopped")
