"""Blobs as files in a local folder (the embedded default: `<data dir>/files`).

A blob is written to `.tmp/` first, fsynced, then renamed into place, so a reader never sees
half a blob and a crash leaves at most a stray temporary file (removed by a later start once a
day old).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from . import READ_CHUNK, BlobEntry, BlobNotFound, BlobReader, BlobStore, check_key

T = TypeVar("T")

log = logging.getLogger(__name__)

_TMP = ".tmp"
_TMP_MAX_AGE_S = 86400


class _FileReader(BlobReader):
    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self._handle = handle
        self._remaining = remaining

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while self._remaining > 0:
                chunk = await asyncio.to_thread(self._handle.read, min(READ_CHUNK, self._remaining))
                if not chunk:
                    return
                self._remaining -= len(chunk)
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()


class LocalBlobStore(BlobStore):
    backend = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def description(self) -> str:
        return f"folder {self.root}"

    def path(self, key: str) -> Path:
        """The file of a key; a key is never a user's input, and never leaves the root."""
        return self.root / check_key(key)

    async def open(self) -> None:
        def prepare() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / _TMP
            tmp.mkdir(exist_ok=True)
            # Left by a crash mid-write. Only old ones: another process (the CLI, a second
            # node on a shared folder) may be writing the young ones right now.
            stale = time.time() - _TMP_MAX_AGE_S
            for entry in tmp.iterdir():
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < stale:
                        entry.unlink()

        try:
            await asyncio.to_thread(prepare)
        except OSError as exc:
            # The server still starts, so that /readyz and `lucky doctor` can say what is wrong.
            log.warning("file storage %s is not usable: %s", self.root, exc)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self.path(key)
        tmp = self.root / _TMP / uuid.uuid4().hex
        handle = await asyncio.to_thread(_create, tmp)
        total = 0
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
                total += len(chunk)
            await asyncio.to_thread(_commit, handle, tmp, target)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
        return total

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        path = self.path(key)

        def open_at() -> tuple[BinaryIO, int]:
            try:
                handle = open(path, "rb")
            except (FileNotFoundError, NotADirectoryError):
                raise BlobNotFound(key) from None
            size = os.fstat(handle.fileno()).st_size
            handle.seek(offset)
            return handle, max(0, size - offset if length is None else min(length, size - offset))

        handle, remaining = await asyncio.to_thread(open_at)
        return _FileReader(handle, remaining)

    async def size(self, key: str) -> int | None:
        path = self.path(key)

        def stat() -> int | None:
            try:
                return path.stat().st_size
            except (FileNotFoundError, NotADirectoryError):
                return None

        return await asyncio.to_thread(stat)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)

    async def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix)

        def remove() -> int:
            if not folder.is_dir():
                return 0
            count = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            return count

        return await asyncio.to_thread(remove)

    def _walk(self, prefix: str) -> Iterator[BlobEntry]:
        for folder, _, names in os.walk(self.root / prefix):
            for name in sorted(names):
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed since the folder was read
                    continue
                yield BlobEntry(path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime_ns // 1_000_000)

    async def _blocking(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    async def check(self) -> str:
        def probe() -> str:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
            stat = os.statvfs(self.root)
            return f"writable, {stat.f_bavail * stat.f_frsize / 1e9:.1f} GB free"

        return await asyncio.to_thread(probe)


def _create(tmp: Path) -> BinaryIO:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return open(tmp, "wb")


def _commit(handle: BinaryIO, tmp: Path, target: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)
