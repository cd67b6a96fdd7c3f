"""The `BlobStore` port: file bytes by key, streamed, in a local folder or an S3 bucket.

Keys are made by the files service (`blobs/...`, `uploads/...`, `thumbs/...`), never from a
user's input, and both backends refuse anything else that looks like a path. Bytes are always
streamed: `put` consumes an async iterator of chunks, `read` yields chunks, so no file is held
whole in memory. Blocking I/O runs in threads, never on the event loop.
"""

from __future__ import annotations

import abc
import itertools
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

READ_CHUNK = 1024 * 1024
LIST_BATCH = 1000
T = TypeVar("T")
_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*")


class BlobError(Exception):
    """The blob store failed (unreachable, misconfigured, out of space)."""


class BlobNotFound(BlobError):
    """No blob has that key."""


def take_bytes(buffer: bytearray, size: int) -> bytes:
    """Remove and return the first `size` bytes of a buffer (all of it when `size` < 0): the
    `read(size)` of a file-like object that fills a buffer from elsewhere."""
    if size < 0 or size >= len(buffer):
        out = bytes(buffer)
        buffer.clear()
    else:
        out = bytes(buffer[:size])
        del buffer[:size]
    return out


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"not a blob key: {key!r}")
    return key


@dataclass(frozen=True)
class BlobEntry:
    """One stored blob as a listing shows it."""

    key: str
    size: int
    modified_ms: int  # when it was last written, epoch milliseconds


class BlobReader(abc.ABC):
    """An opened blob (or a byte range of it): iterate for chunks, then close."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]:
        ...

    @abc.abstractmethod
    async def close(self) -> None:
        ...


class BlobStore(abc.ABC):
    backend: str  # "local" or "s3", recorded with each blob

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where the blobs are, without secrets; for `lucky doctor` and logs."""

    async def open(self) -> None:
        """Prepare the store (create the folder or the bucket)."""

    async def close(self) -> None:
        """Release clients and threads."""

    @abc.abstractmethod
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the chunks under `key` (replacing what was there, atomically); the byte count.

        The iterator is read to its end; if it raises, nothing is stored (what was there
        stays) and the error propagates.
        """

    @abc.abstractmethod
    async def read(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        """Open `length` bytes from `offset` (to the end when None); BlobNotFound if missing."""

    @abc.abstractmethod
    async def size(self, key: str) -> int | None:
        """The blob's size, or None if there is none."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove a blob; nothing happens if it is missing."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix/`; how many."""

    @abc.abstractmethod
    async def check(self) -> str:
        """Raise unless the store is reachable and writable; a one-line detail otherwise."""

    async def listing(self, prefix: str) -> AsyncIterator[BlobEntry]:
        """Every blob whose key starts with `prefix/`, with its size and last-modified time,
        fetched `LIST_BATCH` at a time (for the orphaned-blob clean-up)."""
        entries = self._walk(check_key(prefix))
        while True:
            batch = await self._blocking(lambda: list(itertools.islice(entries, LIST_BATCH)))
            for entry in batch:
                yield entry
            if len(batch) < LIST_BATCH:
                return

    @abc.abstractmethod
    def _walk(self, prefix: str) -> Iterator[BlobEntry]:
        """The blobs under `prefix/`, lazily (blocking: pulled in a worker thread)."""

    @abc.abstractmethod
    async def _blocking(self, fn: Callable[[], T]) -> T:
        """Run a blocking call in this store's worker threads."""

    async def presigned_url(self, key: str, expires_s: int, filename: str, mime: str,
                            disposition: str) -> str | None:
        """A URL the client may fetch the blob from directly, or None where there is none."""
        return None

    async def read_all(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """A small blob or range, whole (for challenges and thumbnails only)."""
        reader = await self.read(key, offset, length)
        try:
            return b"".join([chunk async for chunk in reader])
        finally:
            await reader.close()


def open_blob_store(url: str) -> BlobStore:
    """The BlobStore for a `file:///path` or `s3://KEY:SECRET@HOST:PORT/BUCKET` URL (not yet opened)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        from .local import LocalBlobStore

        return LocalBlobStore(unquote(parts.path))
    if parts.scheme == "s3":
        from .s3 import S3BlobStore

        return S3BlobStore.from_url(url)
    raise BlobError(f"unsupported storage URL {url!r}: use file:///path or s3://KEY:SECRET@HOST:PORT/BUCKET")


__all__ = ["BlobEntry", "BlobError", "BlobNotFound", "BlobReader", "BlobStore", "READ_CHUNK", "check_key", "open_blob_store"]
