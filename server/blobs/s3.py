"""Blobs in an S3 bucket (MinIO, or any S3-compatible store) through the minio SDK.

The SDK is blocking, so every call runs in this store's own thread pool. An upload streams:
`put_object` runs in a thread and pulls the chunks from the event loop as it needs them, so at
most one part (8 MiB) is in memory per upload, whatever the file's size. The pool is separate
from the default executor because a thread running `put_object` waits on the event loop, which
may itself be waiting on the default executor (hashing): sharing one pool could deadlock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from . import READ_CHUNK, BlobEntry, BlobError, BlobNotFound, BlobReader, BlobStore, check_key, take_bytes

T = TypeVar("T")
PART_SIZE = 8 * 1024 * 1024
_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}


class _Pull:
    """A file-like object for `put_object`: its `read` (in a worker thread) pulls the next
    chunks from an async iterator on the event loop."""

    def __init__(self, chunks: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks.__aiter__()
        self._loop = loop
        self._buffer = bytearray()
        self._done = False
        self.total = 0
        self.cancelled = False

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            if self.cancelled:
                raise BlobError("the upload was cancelled")
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
                self.total += len(chunk)
        return take_bytes(self._buffer, size)


class _ObjectReader(BlobReader):
    def __init__(self, store: S3BlobStore, response: Any) -> None:
        self._store = store
        self._response = response
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await self._store._run(self._response.read, READ_CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._store._run(_release, self._response)


def _release(response: Any) -> None:
    response.close()
    response.release_conn()


class S3BlobStore(BlobStore):
    backend = "s3"

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, secure: bool,
                 region: str | None = None, workers: int = 32) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        # Bounded timeouts and retries: a store that is down must fail a request (and /readyz)
        # within seconds, not hold a thread for the SDK's default minutes.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60), maxsize=workers,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]))
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                            http_client=http)
        self._bucket_ready = False
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3")

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        secure = query.get("secure", ["true"])[0].lower() not in {"false", "0", "no", "off"}
        region = query.get("region", [None])[0]
        port = parts.port or (443 if secure else 80)
        return cls(f"{parts.hostname}:{port}", unquote(parts.username or ""), unquote(parts.password or ""),
                   parts.path.strip("/"), secure=secure, region=region)

    @property
    def description(self) -> str:
        return f"s3 {self.endpoint}/{self.bucket}"

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def _ensure_bucket(self) -> None:
        """Create the bucket before the first write, if it is missing. Not at start: a CLI
        command or a node must start while the store is down (`/readyz` says so)."""
        if self._bucket_ready:
            return

        def ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:  # another node made it first
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise

        await self._run(ensure)
        self._bucket_ready = True

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        await self._ensure_bucket()
        source = _Pull(chunks, asyncio.get_running_loop())
        # Length unknown (-1) even when the caller knows it: the SDK then reads to the end
        # of the stream, which is where the caller checks the size and md5 (and raises, so
        # that a bad chunk is never stored). One part in memory at a time.
        try:
            await self._run(self.client.put_object, self.bucket, key, source, -1,
                            part_size=PART_SIZE, num_parallel_uploads=1)
        except BaseException:
            source.cancelled = True
            raise
        return source.total

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        check_key(key)
        if length == 0:
            return _Empty()
        try:
            response = await self._run(self.client.get_object, self.bucket, key, offset=offset, length=length or 0)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise BlobNotFound(key) from None
            if exc.code == "InvalidRange":
                return _Empty()
            raise
        return _ObjectReader(self, response)

    async def size(self, key: str) -> int | None:
        check_key(key)
        try:
            stat = await self._run(self.client.stat_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        return int(stat.size or 0)

    async def delete(self, key: str) -> None:
        check_key(key)
        await self._run(self.client.remove_object, self.bucket, key)

    async def delete_prefix(self, prefix: str) -> int:
        check_key(prefix)

        def remove() -> int:
            names = [DeleteObject(o.object_name) for o in
                     self.client.list_objects(self.bucket, prefix=prefix + "/", recursive=True) if o.object_name]
            if names:
                for error in self.client.remove_objects(self.bucket, names):
                    raise BlobError(f"could not delete {error.name}: {error.message}")
            return len(names)

        return await self._run(remove)

    def _walk(self, prefix: str) -> Iterator[BlobEntry]:
        try:
            for found in self.client.list_objects(self.bucket, prefix=prefix + "/", recursive=True):
                if found.object_name and found.last_modified is not None:
                    yield BlobEntry(found.object_name, int(found.size or 0),
                                    int(found.last_modified.timestamp() * 1000))
        except S3Error as exc:
            if exc.code != "NoSuchBucket":  # no bucket yet: nothing was ever stored
                raise

    async def _blocking(self, fn: Callable[[], T]) -> T:
        return await self._run(fn)

    async def check(self) -> str:
        # Creates a missing bucket, as the first write would: a new site is ready before its
        # first upload, and credentials that cannot create it fail here, naming the reason.
        self._bucket_ready = False
        await self._ensure_bucket()
        return f"bucket {self.bucket} reachable"

    async def presigned_url(self, key: str, expires_s: int, filename: str, mime: str,
                            disposition: str) -> str | None:
        check_key(key)
        headers = {"response-content-type": mime, "response-content-disposition": disposition}
        return await self._run(self.client.presigned_get_object, self.bucket, key,
                               expires=timedelta(seconds=expires_s), response_headers=headers)


class _Empty(BlobReader):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    async def close(self) -> None:
        return None
