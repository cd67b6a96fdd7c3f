"""The files feature's small shared pieces: hashing as bytes stream past, keys, limits' errors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import LuckyError, validation_failed
from ..storage.stores.files import BlobRow
from .images import ImageInfo

MIB = 1024 * 1024
BUFFER = MIB  # the size of the pieces bytes move in
IMAGE_MAX_BYTES = 64 * MIB  # larger images are stored as plain files: not decoded, no thumbnail
_MD5 = re.compile(r"[0-9a-f]{32}")


def payload_too_large(message: str, **details: Any) -> LuckyError:
    return LuckyError(413, "payload_too_large", message, details or None)


def checksum_mismatch(message: str, **details: Any) -> LuckyError:
    return LuckyError(422, "checksum_mismatch", message, details or None)


def parse_md5(value: str, field_name: str) -> str:
    md5 = value.strip().lower()
    if not _MD5.fullmatch(md5):
        raise validation_failed(field_name, "an md5 as 32 hex digits")
    return md5


def parse_content_md5(header: str | None) -> str | None:
    """A `Content-MD5` header (base64 of the 16-byte digest, RFC 1864) as lowercase hex."""
    if header is None:
        return None
    try:
        raw = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise validation_failed("Content-MD5", "base64 of a 16-byte md5 digest")
    return raw.hex()


def blob_key(blob_id: int) -> str:
    return f"blobs/{blob_id % 256:02x}/{blob_id}"


def thumb_key(blob_id: int, px: int) -> str:
    return f"thumbs/{blob_id % 256:02x}/{blob_id}-{px}"


@dataclass
class Digest:
    """md5 and sha256 of what streamed past, and (for a possible image) a copy to analyse."""

    md5: Any = field(default_factory=hashlib.md5)
    sha256: Any = field(default_factory=hashlib.sha256)  # None where only md5 is wanted (chunks)
    size: int = 0
    spool: IO[bytes] | None = None
    image_format: str | None = None

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        if self.sha256 is not None:
            self.sha256.update(chunk)
        if self.spool is not None:
            if self.size > IMAGE_MAX_BYTES:
                self.close_spool()
            else:
                self.spool.write(chunk)

    def close_spool(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


@dataclass(frozen=True)
class StoredContent:
    """Content just streamed into the blob store (or found there already)."""

    blob: BlobRow
    fresh: bool  # a new blob row to insert with the file record
    image: ImageInfo | None


@dataclass(frozen=True)
class CleanupReport:
    uploads_removed: int
    chunks_removed: int

    def summary(self) -> str:
        return f"removed {self.uploads_removed} stale upload(s) and {self.chunks_removed} stored chunk(s)"


async def coalesce(source: AsyncIterable[bytes], size: int = BUFFER) -> AsyncIterator[bytes]:
    """Re-cut a stream into pieces of `size` bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in source:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def chunk_count(size: int, chunk_size: int) -> int:
    return math.ceil(size / chunk_size) if size else 0


INSTANT_MIN_SIZE = 1024  # smaller content gets no instant upload: the client sends it
CHALLENGE_MAX = 64 * 1024


def challenge_range(size: int) -> tuple[int, int] | None:
    """A random (offset, length) of the content that an instant upload must prove it has, or
    None for content under `INSTANT_MIN_SIZE`.

    Always a strict part (half the content, at most 64 KiB): a challenge covering all of it
    would be answered by the md5 the caller declared, so knowing a file's md5 and size would
    be enough to claim it (PROTOCOL.md, "Limits on every input").
    """
    if size < INSTANT_MIN_SIZE:
        return None
    length = min(size // 2, CHALLENGE_MAX)
    offset = secrets.randbelow(size - length + 1)
    return offset, length
