"""The opaque `?cursor=` of every paged list: a tagged, typed position, encoded and checked here.

A cursor is base64url (unpadded) of the JSON array `[tag, part, ...]`, where each part is an
int or a string. `tag` names the list that issued it, so a cursor of one list handed to another
is refused. Decoding trusts nothing: a cursor this server did not issue (not base64, not JSON,
another list's, the wrong parts, an int out of range, an over-long string) is 400
`invalid_request` naming the field `cursor` (PROTOCOL.md, "Limits on every input"), never a 500.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .errors import LuckyError
from .ids import MAX_ID

MAX_CURSOR_CHARS = 512  # every cursor issued here is far shorter; longer ones are not looked at
MAX_PART_CHARS = 128


def bad_cursor(reason: str = "not a cursor this server issued") -> LuckyError:
    return LuckyError(400, "invalid_request", f"cursor: {reason}", {"field": "cursor", "reason": reason})


def encode_cursor(tag: str, *parts: int | str) -> str:
    """The cursor of a position `parts` in the list named `tag`."""
    return base64.urlsafe_b64encode(orjson.dumps([tag, *parts])).decode().rstrip("=")


def decode_cursor(cursor: str, tag: str, *kinds: type[int] | type[str]) -> list[Any]:
    """The parts of a cursor `encode_cursor(tag, ...)` made, each of the kind given; else 400.

    Ints are within 0..MAX_ID (what a database column holds), strings at most
    MAX_PART_CHARS; the typed helpers below narrow further.
    """
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
        raise bad_cursor()
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        raise bad_cursor() from None
    if not isinstance(data, list) or len(data) != len(kinds) + 1 or data[0] != tag:
        raise bad_cursor()
    for value, kind in zip(data[1:], kinds):
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
                raise bad_cursor()
        elif not isinstance(value, str) or len(value) > MAX_PART_CHARS:
            raise bad_cursor()
    return data[1:]


def int_cursor(cursor: str | None, tag: str, default: int) -> int:
    """The one int of a cursor of list `tag`; `default` without a cursor; else 400."""
    if not cursor:
        return default
    (value,) = decode_cursor(cursor, tag, int)
    return int(value)


def text_cursor(cursor: str, tag: str) -> str:
    """The one string of a cursor of list `tag`; else 400."""
    (value,) = decode_cursor(cursor, tag, str)
    return str(value)


def int_text_cursor(cursor: str, tag: str) -> tuple[int, str]:
    """The (int, string) of a cursor of list `tag`; else 400."""
    number, text = decode_cursor(cursor, tag, int, str)
    return int(number), str(text)
