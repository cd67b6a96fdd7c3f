"""Running the app until SIGTERM or SIGINT, then draining: the process side of `lucky serve`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys

from aiohttp import web

from .app import build_app
from .config import Config

log = logging.getLogger("lucky")


# How long a thread may hold the GIL while another waits for it (Python's default is 5 ms).
# The SQLite connection's thread stores each send batch; while the event loop is busy it
# waits for the GIL to start a batch and again after each statement, up to this long each
# time, and every client waits with it. At 1 ms W1 gained about 6% and a batch started in
# 1.4 ms instead of 2.8 (docs/benchmarks.md, "The send path in issue 14").
SWITCH_INTERVAL_S = 0.001


def install_event_loop() -> None:
    """uvloop when it is installed: a faster loop for the same code; and the GIL's switch
    interval that suits a loop and a database thread (`SWITCH_INTERVAL_S`).

    `LUCKY_EVENT_LOOP=asyncio` keeps the standard library's loop, to measure what uvloop saves
    (docs/benchmarks.md) or to rule it out when chasing a bug."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if os.environ.get("LUCKY_EVENT_LOOP", "uvloop") == "asyncio":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class ServeError(Exception):
    """The server could not start (say, its address is taken); one line for the operator."""


def bind_free_port(host: str, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound (not yet listening) to a port the kernel picks on `host`.

    Bound before the app is built so that the configuration, and through it `public_url`
    (signed download links, avatar URLs, the OpenAPI `servers` entry), names the real port
    rather than 0. It listens only when the site starts, once the services are open.

    `reuse_port`: the port is reserved for the workers of `lucky serve --workers N`, which
    bind it too (SO_REUSEPORT); a bound socket that never listens is handed no connection.
    """
    try:
        infos = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:0: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise _cannot_listen(host, 0, exc) from None
    return sock


def _cannot_listen(host: str, port: int, exc: OSError) -> ServeError:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return ServeError(f"cannot listen on {host}:{port}: {reason}")


async def serve(config: Config, *, reuse_port: bool = False, apply_migrations: bool = True) -> None:
    """Serve until SIGTERM or SIGINT, then drain; raises ServeError if it cannot listen.

    `reuse_port`: one of the workers of `lucky serve --workers N`, which all listen on the same
    port (SO_REUSEPORT: the kernel spreads new connections over them). Their parent applied
    the migrations, so a worker only checks the schema (`apply_migrations=False`).
    """
    host = config.server.host
    sock = bind_free_port(host) if config.server.port == 0 else None
    if sock is not None:
        port = int(sock.getsockname()[1])
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, port=port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Installed before the (slow) start so that a SIGTERM during start-up also drains
    # instead of killing the process half-way through opening the database.
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    app = build_app(config, apply_migrations=apply_migrations)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=config.server.shutdown_timeout_s)
    started = False
    try:
        # setup() opens the services (cleanup_ctx); cleanup() below closes whatever opened,
        # also when setup or the bind fails, so no database thread is left holding the process.
        await runner.setup()
        # No SO_REUSEADDR on purpose: a second server on a port already in use must fail.
        # SO_REUSEPORT only between workers of one `lucky serve --workers N` (same user).
        site: web.BaseSite
        if sock is not None:
            site = web.SockSite(runner, sock)
        else:
            site = web.TCPSite(runner, host, config.server.port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            raise _cannot_listen(host, config.server.port, exc) from None
        shown = f"[{host}]" if ":" in host else host
        log.info("listening on http://%s:%d", shown, config.server.port)
        started = True
        await stop.wait()
        log.info("draining: no new connections; finishing writes and closing sockets")
    finally:
        # Stops accepting, runs on_shutdown (sockets closed with 1001), waits for handlers,
        # then cleanup_ctx closes the services: pending database writes finish before exit.
        await runner.cleanup()
        if sock is not None:
            sock.close()  # already closed if the site started; not if the start failed
        for sig in signals:
            loop.remove_signal_handler(sig)
        if started:
            log.info("stopped")
