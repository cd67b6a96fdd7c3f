"""HTTP conditional and partial requests on a file: `ETag`, `If-None-Match`, `If-Range`, `Range`."""

from __future__ import annotations

from dataclasses import dataclass


class RangeNotSatisfiable(Exception):
    """The `Range` asks for bytes the file does not have (answer 416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names this ETag (weak comparison, as RFC 9110 asks)."""
    if not header:
        return False
    bare = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == bare:
            return True
    return False


def parse_range(header: str | None, size: int, if_range: str | None = None, etag: str = "") -> ByteRange | None:
    """The one byte range asked for, or None to send the whole file.

    A header this server does not understand, several ranges, or an `If-Range` that is not
    the current ETag all mean the whole file (RFC 9110 allows ignoring `Range`). A range that
    starts past the end raises RangeNotSatisfiable.
    """
    if not header:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isascii() and last.isascii()) or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable()
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable()
    return ByteRange(start, min(end, size - 1))
