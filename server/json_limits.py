"""Limits every JSON input is held to before it is decoded (PROTOCOL.md, "Limits on every input").

Two checks on the raw text, shared by HTTP bodies (server/web/bodies.py) and WebSocket frames
(server/chat/frames.py), both cheap on the common path because they run on every frame:

- Nesting deeper than MAX_DEPTH: the decoders recurse (msgspec fails with RecursionError past
  ~1,000 levels, orjson cannot write past 255), so deep input is refused before decoding.
  Text with at most MAX_DEPTH brackets cannot be that deep, which two `count` calls settle;
  other text is reduced to its brackets (strings removed) and matched once, in linear time.
- Integers outside -(2^53-1)..2^53-1: what JavaScript clients read exactly, and orjson (and the
  database) cannot hold the arbitrary-size ints msgspec decodes. Such an integer has 16 or more
  digits right after `:`, `,` or `[`; only text holding such a run (ids are strings: their
  digits follow a quote) is decoded and walked for the field to name.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .errors import LuckyError, invalid_request, validation_failed

MAX_DEPTH = 32
MAX_SAFE_INT = 2**53 - 1

# A JSON string, escapes included; its brackets and digits are text, not structure.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Brackets only, `{}` written as `[]` (a mismatched pair is the decoder's to refuse: it stops
# there, no deeper than the brackets before it).
_SHAPE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_TOO_MANY_OPEN = b"[" * (MAX_DEPTH + 1)
# A run of 16 or more digits can be an integer out of range only where a value starts (after
# `:`, `,`, `[` or at the very start, white space between): an id's digits follow a quote.
# Digits are mapped to `0` and runs found with bytes.find, both at C speed, then the byte
# before each run is looked at: a regex scan is five times slower on a frame carrying ids,
# which nearly every frame does.
_DIGIT_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 16
_WHITE = b" \t\r\n"
_VALUE_START = b":,[-"


def _balanced(depth: int) -> re.Pattern[bytes]:
    """Matches balanced brackets nested at most `depth` deep, in one pass: a regular language
    for a fixed depth, and possessive repeats never backtrack."""
    pattern = b""
    for _ in range(depth):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


_WITHIN_DEPTH = _balanced(MAX_DEPTH - 1)  # applied once the innermost level is gone


def _as_bytes(raw: str | bytes) -> bytes:
    return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw


def nesting_exceeds(raw: str | bytes) -> bool:
    """True if `raw` nests arrays and objects deeper than MAX_DEPTH, or, holding more than
    MAX_DEPTH brackets, its brackets do not pair up (then it is not JSON either)."""
    if isinstance(raw, bytes):
        if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
            return False
    elif raw.count("[") + raw.count("{") <= MAX_DEPTH:
        return False
    shape = _STRING.sub(b"", _as_bytes(raw)).translate(_SHAPE, _NOT_BRACKET)
    if _TOO_MANY_OPEN in shape:
        return True
    # Dropping every empty pair removes exactly the innermost level (replace does not rescan
    # what it removed), and collapses wide, shallow input at C speed before the regex runs.
    shape = shape.replace(b"[]", b"")
    return bool(shape) and _WITHIN_DEPTH.fullmatch(shape) is None


def unsafe_int_field(raw: str | bytes) -> str | None:
    """The field (dotted path) of the first integer outside ±MAX_SAFE_INT in `raw`, or None.

    Call it only on text `nesting_exceeds` passed: it may decode the text. Text that is not
    JSON gives None (the typed decoding that follows reports it).
    """
    data = _as_bytes(raw)
    if not _may_hold_long_int(data):
        return None
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    return first_unsafe_int(value, "")


def _may_hold_long_int(data: bytes) -> bool:
    """Whether a run of 16+ digits stands where a JSON value starts (then decode and look)."""
    zeros = data.translate(_DIGIT_TO_ZERO)
    start = zeros.find(_LONG_RUN)
    while start >= 0:
        before = start - 1
        while before >= 0 and data[before] in _WHITE:
            before -= 1
        # `-` (a negative number) or nothing before the run: the exact walk decides.
        if before < 0 or data[before] in _VALUE_START and not _inside_string(data, before):
            return True
        # The rest of a long run is found again with a digit before it, and passed over.
        start = zeros.find(_LONG_RUN, start + len(_LONG_RUN))
    return False


def _inside_string(data: bytes, colon: int) -> bool:
    """A `:` not right after a closing quote is inside a string (`"p:<a>:<b>"`): between a
    key and its value, `:` follows the key's quote (an escaped quote only costs a walk)."""
    if data[colon] != 0x3A:
        return False
    before = colon - 1
    while before >= 0 and data[before] in _WHITE:
        before -= 1
    return before < 0 or data[before] != 0x22


def first_unsafe_int(value: Any, path: str = "") -> str | None:
    """The dotted path of the first int outside ±MAX_SAFE_INT in a decoded value, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (path or "body") if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_unsafe_int(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unsafe_int(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_json_limits(raw: str | bytes) -> None:
    """Refuse JSON text that breaks a limit: 400 `invalid_request` if nested deeper than
    MAX_DEPTH (or its brackets do not pair up), 422 `validation_failed` naming the field of an
    integer out of range. Text within the limits passes, valid JSON or not."""
    if nesting_exceeds(raw):
        raise invalid_request(f"The JSON is not valid or nests deeper than {MAX_DEPTH} levels.")
    field = unsafe_int_field(raw)
    if field is not None:
        raise integer_out_of_range(field)


def integer_out_of_range(field: str) -> LuckyError:
    return validation_failed(field, f"an integer from -{MAX_SAFE_INT} to {MAX_SAFE_INT}")


def depth_of(value: Any, limit: int) -> int:
    """How deep arrays and objects nest in a decoded value (a scalar is 0), counted up to
    `limit` + 1: deeper values are not walked further."""
    if isinstance(value, dict):
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return 0
    if limit <= 0:
        return 1
    deepest = 0
    for child in children:
        deepest = max(deepest, depth_of(child, limit - 1))
        if deepest >= limit:
            break
    return deepest + 1
