"""File names and types: what a stored name may hold, the MIME type served, and a
`Content-Disposition` that no name can break out of."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from urllib.parse import quote

from .images import IMAGE_MIMES

MAX_NAME = 255
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
OCTET_STREAM = "application/octet-stream"
# Served inline (a browser shows them); everything else is an attachment, so an uploaded
# HTML or SVG file can never run as a page of this server's origin.
_INLINE_PREFIXES = ("audio/", "video/")
_INLINE = IMAGE_MIMES - {"image/tiff"}


def clean_name(raw: str) -> str:
    """The last path segment of a client's file name, without control characters; "" if
    nothing is left. `../../etc/passwd` becomes `passwd`: a name is a label, never a path."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".").strip()
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 16 else name[:MAX_NAME]
    return name


def clean_mime(raw: str | None) -> str | None:
    """A syntactically valid `type/subtype` (parameters dropped), lowercased; None otherwise."""
    if not raw:
        return None
    value = raw.split(";", 1)[0].strip().lower()
    return value if _MIME.fullmatch(value) else None


def choose_mime(declared: str | None, name: str, image_mime: str | None) -> str:
    """The type to store: an image's real type, else the client's, else a guess from the name."""
    if image_mime:
        return image_mime
    if declared and declared != OCTET_STREAM:
        return declared
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return clean_mime(guessed) or OCTET_STREAM


def inline(mime: str) -> bool:
    return mime in _INLINE or mime.startswith(_INLINE_PREFIXES)


def content_disposition(mime: str, name: str) -> str:
    """`inline` or `attachment`, with an ASCII fallback name and the exact one (RFC 6266/5987)."""
    name = clean_name(name) or "file"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;%' else "_" for ch in name)
    kind = "inline" if inline(mime) else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
