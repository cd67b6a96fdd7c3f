"""Where archives are kept: a local folder (mode 0700), or an S3 bucket (through the minio SDK,
the URL parsed as the S3 file store parses its own).

Archives are named `lucky-backup-<UTC time>.tar` (taken by hand) or `lucky-scheduled-<UTC
time>.tar` (taken by the scheduled job, the only ones it ever prunes), `.tar.enc` when
encrypted. A folder's archive is written under a temporary name (`.NAME.partial`, 0600) and
renamed once complete; an S3 archive is written to a temporary local file, then uploaded (an
object appears only when its upload completes).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..blobs import BlobError
from ..blobs.s3 import S3BlobStore
from . import BackupError
from .archive import HEAD_BYTES, read_summary

HAND_PREFIX = "lucky-backup-"
SCHEDULED_PREFIX = "lucky-scheduled-"
_NAME = re.compile(r"^lucky-(backup|scheduled)-\d{8}-\d{6}-\d{3}\.tar(\.enc)?$")
_UPLOAD_CHUNK = 8 * 1024 * 1024


def archive_name(now_ms: int, *, scheduled: bool, encrypted: bool) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ms // 1000)) + f"-{now_ms % 1000:03d}"
    return f"{SCHEDULED_PREFIX if scheduled else HAND_PREFIX}{stamp}.tar" + (".enc" if encrypted else "")


def is_archive_name(name: str) -> bool:
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class ArchiveInfo:
    """An archive found in a place: its summary, or why it could not be read."""

    name: str
    location: str
    size: int
    summary: dict[str, Any] | None
    problem: str = ""

    @property
    def scheduled(self) -> bool:
        return self.name.startswith(SCHEDULED_PREFIX)


def _summary_of(head: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        return read_summary(head), ""
    except BackupError as exc:
        return None, str(exc)


class Place(abc.ABC):
    """A folder or a bucket holding archives."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where, without secrets."""

    @abc.abstractmethod
    def new_file(self, name: str) -> tuple[Path, int]:
        """A temporary file to write archive `name` into: its path and an open descriptor."""

    @abc.abstractmethod
    async def keep(self, temporary: Path, name: str) -> str:
        """Make the complete temporary file the archive `name`; its location."""

    @abc.abstractmethod
    async def archives(self) -> list[ArchiveInfo]:
        """Every archive here, oldest first (by name, which holds the time)."""

    @abc.abstractmethod
    async def remove(self, name: str) -> None:
        """Delete one archive."""

    @abc.abstractmethod
    def local_copy(self, name: str) -> AbstractAsyncContextManager[Path]:
        """The archive as a local file for as long as the context lasts."""

    async def close(self) -> None:
        """Release clients and threads."""


def _private_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


class FolderPlace(Place):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def description(self) -> str:
        return str(self.folder)

    def new_file(self, name: str) -> tuple[Path, int]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.folder, 0o700)
            path = self.folder / f".{name}.partial"
            return path, _private_file(path)
        except OSError as exc:
            raise BackupError(f"cannot write into {self.folder}: {exc.strerror}") from None

    async def keep(self, temporary: Path, name: str) -> str:
        target = self.folder / name
        await asyncio.to_thread(os.replace, temporary, target)
        return str(target)

    async def archives(self) -> list[ArchiveInfo]:
        def scan() -> list[ArchiveInfo]:
            if not self.folder.exists():
                return []  # no backup taken yet
            if not self.folder.is_dir():
                raise BackupError(f"{self.folder} is not a folder")
            found = []
            for path in sorted(self.folder.iterdir()):
                if not is_archive_name(path.name) or not path.is_file():
                    continue
                with open(path, "rb") as handle:
                    summary, problem = _summary_of(handle.read(HEAD_BYTES))
                found.append(ArchiveInfo(path.name, str(path), path.stat().st_size, summary, problem))
            return found

        return await asyncio.to_thread(scan)

    async def remove(self, name: str) -> None:
        if is_archive_name(name):
            await asyncio.to_thread((self.folder / name).unlink, True)

    @contextlib.asynccontextmanager
    async def local_copy(self, name: str) -> AsyncIterator[Path]:
        yield self.folder / name


class BucketPlace(Place):
    """Archives as objects at the top of a bucket."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.store = S3BlobStore.from_url(url)
        self._public = urlunsplit(("s3", f"{parts.hostname}:{parts.port}", f"/{self.store.bucket}", "", ""))

    @property
    def description(self) -> str:
        return self._public

    def new_file(self, name: str) -> tuple[Path, int]:
        handle, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial")
        os.fchmod(handle, 0o600)
        return Path(path), handle

    async def keep(self, temporary: Path, name: str) -> str:
        async def chunks() -> AsyncIterator[bytes]:
            with open(temporary, "rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, _UPLOAD_CHUNK):
                    yield chunk

        try:
            await self.store.put(name, chunks())
        except Exception as exc:  # noqa: BLE001 - S3Error, urllib3's, BlobError: one line
            raise BackupError(f"cannot upload {name} to {self.description}: {exc}") from None
        finally:
            temporary.unlink(missing_ok=True)
        return f"{self._public}/{name}"

    async def archives(self) -> list[ArchiveInfo]:
        def names() -> list[tuple[str, int]]:
            client = self.store.client
            if not client.bucket_exists(self.store.bucket):
                return []
            return [(o.object_name, int(o.size or 0)) for o in client.list_objects(self.store.bucket)
                    if o.object_name and is_archive_name(o.object_name)]

        try:
            found = []
            for name, size in sorted(await asyncio.to_thread(names)):
                summary, problem = _summary_of(await self.store.read_all(name, 0, HEAD_BYTES))
                found.append(ArchiveInfo(name, f"{self._public}/{name}", size, summary, problem))
        except Exception as exc:  # noqa: BLE001
            raise BackupError(f"cannot list {self.description}: {exc}") from None
        return found

    async def remove(self, name: str) -> None:
        if is_archive_name(name):
            await self.store.delete(name)

    @contextlib.asynccontextmanager
    async def local_copy(self, name: str) -> AsyncIterator[Path]:
        path, handle = self.new_file(name)
        try:
            with os.fdopen(handle, "wb") as out:
                reader = await self.store.read(name)
                async for chunk in reader:
                    await asyncio.to_thread(out.write, chunk)
            yield path
        except BlobError as exc:
            raise BackupError(f"cannot fetch {name} from {self.description}: {exc}") from None
        finally:
            path.unlink(missing_ok=True)

    async def close(self) -> None:
        await self.store.close()


def open_place(where: str) -> Place:
    """The place for a folder path or an `s3://KEY:SECRET@HOST:PORT/BUCKET` URL."""
    if where.startswith("s3://"):
        parts = urlsplit(where)
        if not parts.hostname or not parts.path.strip("/"):
            raise BackupError("use s3://KEY:SECRET@HOST:PORT/BUCKET?secure=false for a bucket")
        return BucketPlace(where)
    if "://" in where:
        raise BackupError(f"{where!r}: give a folder or an s3://KEY:SECRET@HOST:PORT/BUCKET URL")
    return FolderPlace(Path(where).expanduser().absolute())


@contextlib.asynccontextmanager
async def archive_file(where: str) -> AsyncIterator[Path]:
    """An archive as a local file: a path, or an object `s3://KEY:SECRET@HOST:PORT/BUCKET/NAME`
    fetched into a temporary file for as long as the context lasts."""
    if not where.startswith("s3://"):
        yield Path(where).expanduser()
        return
    parts = urlsplit(where)
    bucket, _, name = parts.path.strip("/").partition("/")
    if not bucket or not is_archive_name(name):
        raise BackupError("name the archive in its bucket: s3://KEY:SECRET@HOST:PORT/BUCKET/lucky-backup-....tar")
    place = BucketPlace(urlunsplit((parts.scheme, parts.netloc, f"/{bucket}", parts.query, "")))
    try:
        async with place.local_copy(name) as path:
            yield path
    finally:
        await place.close()


def default_place(configured: str, data_dir: Path) -> str:
    """`backup.to`, else `<data dir>/backups`."""
    return configured or str(data_dir / "backups")
