"""Answering a GET for stored bytes with `Range` (one range, 206 or 416), streamed from the
blob store about 1 MiB at a time; used by file contents and release packages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..blobs import BlobReader
from ..errors import LuckyError
from ..files.ranges import RangeNotSatisfiable, parse_range
from .bodies import json_response

log = logging.getLogger(__name__)

OpenRange = Callable[[int, int], Awaitable[BlobReader]]  # (offset, length) -> the bytes


async def stream_bytes(request: web.Request, open_range: OpenRange, size: int, etag: str, mime: str,
                       headers: dict[str, str], label: str) -> web.StreamResponse:
    """200 with every byte, 206 with the one range asked for (see `parse_range`, `If-Range`
    against `etag`), or 416 when it starts past the end. `label` names what is sent, in logs."""
    try:
        wanted = parse_range(request.headers.get("Range"), size, request.headers.get("If-Range"), etag)
    except RangeNotSatisfiable:
        error = LuckyError(416, "range_not_satisfiable", f"The range is outside the {size} bytes there are.",
                           {"size": size})
        return json_response(error.to_body(), status=416, headers={"Content-Range": f"bytes */{size}"})
    status, offset, length = 200, 0, size
    if wanted is not None:
        status, offset, length = 206, wanted.start, wanted.length
        headers = {**headers, "Content-Range": f"bytes {wanted.start}-{wanted.end}/{size}"}
    reader = await open_range(offset, length)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = mime
    response.content_length = length
    try:
        await response.prepare(request)
        async for chunk in reader:
            await response.write(chunk)
        await response.write_eof()
    except (ConnectionError, OSError) as exc:
        log.debug("download of %s stopped: %s", label, exc)
    finally:
        await reader.close()
    return response
