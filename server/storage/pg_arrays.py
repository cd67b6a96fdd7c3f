"""Lists as PostgreSQL array literals ('{1,2}', '{"a","b"}'), written here, not by psycopg.

Stores send a batch as one array per column (`unnest(?::bigint[], ?::text[], ...)`, see
`as_columns`). psycopg writes a list element by element in Python, escaping each text with a
regular expression: for the send batch's eleven columns that was a quarter of the server's
CPU under W1. Written with `str.join` and `str.replace` it costs a small part of that. The
literal goes as a string, which psycopg sends with no type (PostgreSQL's `unknown`), so the
statement's cast (`?::bigint[]`) gives its type: every list parameter on PostgreSQL must
have one, as every one in the stores has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_NONE = type(None)


def _text(value: str) -> str:
    # Inside double quotes only `"` and `\` are special; commas, braces, spaces and the
    # word NULL are plain text there.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: list[Any]) -> str | None:
    """The array literal of a flat list of ints, strs or bools (None among them is NULL);
    None for any other list, which psycopg then writes itself."""
    kinds = set(map(type, values))
    if _NONE in kinds:
        kinds.discard(_NONE)
        if len(kinds) == 1:
            kind = next(iter(kinds))
            if kind in (int, str, bool):
                return "{" + ",".join("NULL" if v is None else _element(kind, v) for v in values) + "}"
        return None if kinds else "{" + ",".join("NULL" for _ in values) + "}"
    if not kinds:
        return "{}"
    if kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds == {str}:
        return "{" + ",".join(map(_text, values)) + "}"
    if kinds == {bool}:
        return "{" + ",".join("t" if v else "f" for v in values) + "}"
    return None


def _element(kind: type, value: Any) -> str:
    if kind is str:
        return _text(value)
    if kind is bool:
        return "t" if value else "f"
    return str(value)


def with_array_literals(params: Sequence[Any]) -> Sequence[Any]:
    """`params` with each list that `array_literal` can write replaced by its literal."""
    if not any(type(p) is list for p in params):
        return params
    out = []
    for param in params:
        if type(param) is list and (literal := array_literal(param)) is not None:
            out.append(literal)
        else:
            out.append(param)
    return out
