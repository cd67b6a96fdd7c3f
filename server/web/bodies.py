"""Parsing request bodies and query strings into typed objects, with the contract's errors."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import orjson
from aiohttp import web

from ..errors import LuckyError, field_of_error, invalid_request, validation_failed
from ..ids import parse_id
from ..json_limits import MAX_SAFE_INT, check_json_limits

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def decode_body(raw: bytes, kind: type[T]) -> T:
    """`raw` JSON as a `kind` (a msgspec Struct); 400 if not JSON, 422 naming a bad field.

    The limits of every input come first: 400 if nested deeper than 32 levels, 422 for an
    integer outside ±(2^53-1) in any field (PROTOCOL.md, "Limits on every input").
    """
    if not raw.strip():
        raw = b"{}"
    check_json_limits(raw)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        # Typed decoding stops at the first value of the wrong type, before it has seen the
        # rest: `[1, 2` or `{"username": 5,` would be 422. Malformed JSON is 400 whatever it
        # holds, so check the whole body (only on this error path).
        _require_json(raw)
        field, reason = field_of_error(str(exc))
        raise validation_failed(field, reason) from None
    except msgspec.DecodeError:
        raise invalid_request("The body is not valid JSON.") from None


def _require_json(raw: bytes) -> None:
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise invalid_request("The body is not valid JSON.") from None


async def parse_body(request: web.Request, kind: type[T]) -> T:
    # Lenient on the header (curl sends form-urlencoded by default) but not on the content:
    # whatever the header says, the body must be JSON, except a multipart form, which never is.
    if request.content_type.startswith("multipart/"):
        raise LuckyError(415, "unsupported_media_type", "Send the body as application/json.")
    return decode_body(await request.read(), kind)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


def query_int(request: web.Request, name: str, low: int = 0, high: int = MAX_SAFE_INT) -> int | None:
    """The whole-number query parameter `name` within low..high; None if absent or empty;
    422 naming it for anything else (a sign, "²", "1.5", 10^23...)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    # str.isdigit alone takes "²", which int() refuses; the length check keeps int() cheap.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
        raise validation_failed(name, f"a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise validation_failed(name, f"a whole number from {low} to {high}")
    return value


def query_limit(request: web.Request, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    value = query_int(request, "limit", 1, maximum)
    return default if value is None else value


def wire_id(value: str) -> int | None:
    """An id from a path or body string; None unless plain ASCII decimal digits.

    `parse_id` trusts `str.isdigit`, which also takes "²" (then int() raises) and other
    scripts' digits; ids on the wire are ASCII.
    """
    return parse_id(value) if value.isascii() else None


def path_id(request: web.Request, name: str) -> int:
    value = wire_id(request.match_info[name])
    if value is None:
        raise LuckyError(404, "not_found", f"No such {name.removesuffix('_id') or 'item'}: ids are decimal strings.")
    return value


def list_body(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
