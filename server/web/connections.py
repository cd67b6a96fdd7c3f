"""What a client's connection may cost before a handler sees it: time, and what gets logged.

aiohttp waits for a request head as long as its `keepalive_timeout` (an hour by default) and
for a body forever, and logs a malformed request with the bytes that broke it (an over-long
`Authorization` header: part of the bearer token). Here: the head must come within
`server.header_timeout_s`, the body within `server.body_timeout_s`, and the protocol's log
lines name the error but never the request's bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from ..config import ServerConfig
from ..errors import LuckyError
from .middleware import error_response


class _WithoutRequestBytes(logging.Filter):
    """Rewrites aiohttp's "Error handling request" for a malformed request into one line.

    The exception of a malformed request quotes the bytes that broke the parser (a header
    line, a token), so the record keeps its class and status only, and no traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.getMessage()}: malformed request ({type(error).__name__}, {error.code})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"  # the client's mistake
        return True


protocol_log = logging.getLogger("lucky_server.http")
protocol_log.addFilter(_WithoutRequestBytes())


def handler_args(config: ServerConfig) -> dict[str, Any]:
    """Arguments of aiohttp's request handler (`web.Application(handler_args=...)`).

    `keepalive_timeout` is aiohttp's only clock before a request's head is parsed: armed
    when a connection opens and after each answer, it closes a connection still waiting for
    a whole head when it fires, a silent client and a half-sent head alike.
    """
    return {"keepalive_timeout": config.header_timeout_s, "logger": protocol_log}


class BodyTimeout(asyncio.TimeoutError):
    """The request body did not arrive in time (raised to whoever reads it)."""


def body_deadline(timeout_s: float) -> Middleware:
    """A middleware: a body not whole `timeout_s` after its head fails its reads, answers 408.

    One `call_at` per request with a body, cancelled when the handler returns; requests
    without a body (a WebSocket upgrade, a long poll) have no deadline. After the 408 the
    connection closes: the rest of the body is never read.
    """

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        if timeout_s <= 0 or not request.body_exists:
            # Handed on, not awaited: no frame of this middleware's is kept for the request's
            # life, which for a WebSocket is the socket's (docs/benchmarks.md, W3).
            return handler(request)
        return _within(timeout_s, request, handler)

    return middleware


async def _within(timeout_s: float, request: web.Request, handler: Handler) -> web.StreamResponse:
    content = request.content

    def expire() -> None:
        if not content.is_eof():
            content.set_exception(BodyTimeout())

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        return await handler(request)
    except BodyTimeout:
        response = error_response(LuckyError(
            408, "request_timeout", f"The request body did not arrive within {timeout_s:g} s."))
        response.force_close()
        return response
    finally:
        timer.cancel()
