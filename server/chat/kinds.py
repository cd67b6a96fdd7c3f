"""What each message kind's body may hold (PROTOCOL.md, "Kinds and their body")."""

from __future__ import annotations

import math
from typing import Any

import orjson

from ..errors import validation_failed
from ..ids import parse_id
from ..json_limits import MAX_SAFE_INT, depth_of, integer_out_of_range, unsafe_int_field

MAX_TEXT = 8000
MAX_CUSTOM_BYTES = 16 * 1024
MAX_CUSTOM_DEPTH = 16  # the body object itself is level 1
MEDIA_KINDS = ("image", "audio", "video", "file")
CLIENT_KINDS = ("text", "location", "custom", *MEDIA_KINDS)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise validation_failed(f"body.{name}", "a number")
    if not low <= value <= high:
        raise validation_failed(f"body.{name}", f"between {low:g} and {high:g}")
    return float(value)


def _optional_str(body: dict[str, Any], name: str, limit: int) -> None:
    if name in body and (not isinstance(body[name], str) or len(body[name]) > limit):
        raise validation_failed(f"body.{name}", f"a string of at most {limit} characters")


def _optional_uint(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if name in body and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SAFE_INT):
        raise validation_failed(f"body.{name}", f"a whole number from 0 to {MAX_SAFE_INT}")


def _check_custom(body: dict[str, Any]) -> None:
    # What keeps a stored body serializable wherever it is read back (inside a history page,
    # a conversation list, a frame), for every caller, not only the edges (which refuse
    # JSON deeper than 32 levels and unsafe integers before decoding).
    too_deep = validation_failed("body", f"at most {MAX_CUSTOM_DEPTH} levels of objects and arrays")
    try:
        serialized = orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError: over 255 levels, or an int past 64 bits
        if depth_of(body, MAX_CUSTOM_DEPTH) > MAX_CUSTOM_DEPTH:
            raise too_deep from None
        raise validation_failed("body", "JSON values only") from None
    if len(serialized) > MAX_CUSTOM_BYTES:
        raise validation_failed("body", f"at most {MAX_CUSTOM_BYTES} bytes as JSON")
    if depth_of(body, MAX_CUSTOM_DEPTH) > MAX_CUSTOM_DEPTH:
        raise too_deep
    field = unsafe_int_field(serialized)
    if field is not None:
        raise integer_out_of_range(f"body.{field}")


def check_body(kind: str, body: Any) -> dict[str, Any]:
    """The body, checked against its kind; 422 naming the first bad field.

    Returns a clean copy holding only the fields the kind defines (custom keeps everything).
    """
    if kind not in CLIENT_KINDS:
        raise validation_failed("kind", f"one of {', '.join(CLIENT_KINDS)}")
    if not isinstance(body, dict):
        raise validation_failed("body", "an object")
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise validation_failed("body.text", "a non-empty string")
        if len(text) > MAX_TEXT:
            raise validation_failed("body.text", f"at most {MAX_TEXT} characters")
        clean: dict[str, Any] = {"text": text}
        if "mentions" in body:
            mentions = body["mentions"]
            if not isinstance(mentions, list) or len(mentions) > 100 or any(parse_id(m) is None for m in mentions):
                raise validation_failed("body.mentions", "a list of user ids")
            clean["mentions"] = [str(parse_id(m)) for m in mentions]
        if body.get("mention_all") is True:
            clean["mention_all"] = True
        return clean
    if kind == "location":
        clean = {"lat": _number(body, "lat", -90, 90), "lng": _number(body, "lng", -180, 180)}
        _optional_str(body, "title", 256)
        if "title" in body:
            clean["title"] = body["title"]
        return clean
    if kind == "custom":
        _check_custom(body)
        return body
    # media
    file_id = parse_id(body.get("file_id"))
    if file_id is None:
        raise validation_failed("body.file_id", "the id of an uploaded file")
    clean = {"file_id": str(file_id)}
    _optional_str(body, "name", 255)
    for name in ("size", "width", "height", "duration_ms"):
        _optional_uint(body, name)
    for name in ("name", "size", "width", "height", "duration_ms"):
        if name in body:
            clean[name] = body[name]
    return clean
