"""The files rules: storing uploads, chunked and instant uploads, who may read a file,
downloads, thumbnails, avatars, limits and the clean-up of abandoned uploads.

Bytes flow through as an async iterator of chunks of about 1 MiB: hashed (md5 and sha256) in a
worker thread, written by the `BlobStore`, never held whole. Content is stored once per
(md5, size, sha256) and shared by the file records of everyone who uploaded it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from typing import IO, Any, Protocol

from ..blobs import BlobNotFound, BlobReader, BlobStore
from ..chat.model import ConversationRef, Message
from ..clock import Clock
from ..config import FilesConfig
from ..errors import LuckyError, not_found, validation_failed
from ..ids import Snowflake
from ..storage import Database, Tx
from ..storage.stores.files import BlobRow, FileRow, FileStats, FileStore
from . import images
from .images import ImageInfo, ImageRejected
from .model import (MIB, CleanupReport, Digest, StoredContent, blob_key, checksum_mismatch, coalesce,
                    payload_too_large, thumb_key)
from .naming import choose_mime, clean_mime, clean_name
from .orphans import OrphanReport, OrphanSweep
from .signing import UrlSigner
from .uploads import UploadService

log = logging.getLogger(__name__)


class ConversationReaders(Protocol):
    """Who may read a conversation (the chat feature's `Audience`)."""

    async def check_read(self, user_id: int, ref: ConversationRef) -> int | None:
        """The last seq the user may read (None: all); raises LuckyError for outsiders."""


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, config: FilesConfig, clock: Clock, ids: Snowflake,
                 url_signing_key: bytes, public_url: str, conversations: ConversationReaders) -> None:
        """`conversations` answers who may read a conversation: the readers of a conversation
        holding a message that references a file may read the file."""
        self._db = db
        self.blobs = blobs
        self.config = config
        self._clock = clock
        self._ids = ids
        self.store = FileStore(db)
        self.signer = UrlSigner(url_signing_key, config.url_ttl_s)
        self.public_url = public_url
        self.conversations = conversations
        # Pillow work: at most two decodes at once, and one large one, so that a burst of
        # photos cannot take all the memory or all the default executor's threads.
        self._images = images.ImageWorker(threads=2)
        self._thumbs_in_flight: dict[int, asyncio.Future[ImageInfo]] = {}
        self.uploads = UploadService(self)

    async def open(self) -> None:
        await self.blobs.open()

    async def close(self) -> None:
        self._images.close()
        await self.blobs.close()

    async def check(self) -> str:
        """Raise unless the blob store is reachable and writable (for /readyz and doctor)."""
        return await self.blobs.check()

    # --- limits --------------------------------------------------------------------------

    @property
    def max_single(self) -> int:
        return self.config.max_single_mb * MIB

    @property
    def max_upload(self) -> int:
        return self.config.max_upload_mb * MIB

    async def quota_left(self, owner_id: int) -> int | None:
        """Bytes the owner may still store, or None without a quota."""
        if self.config.quota_mb <= 0:
            return None
        return max(0, self.config.quota_mb * MIB - await self.store.used_bytes(owner_id))

    async def check_quota(self, owner_id: int, size: int) -> None:
        left = await self.quota_left(owner_id)
        if left is not None and size > left:
            raise payload_too_large(
                f"This would exceed your storage quota of {self.config.quota_mb} MB.",
                quota_bytes=self.config.quota_mb * MIB, available_bytes=left)

    # --- storing content -------------------------------------------------------------------

    async def _hashed(self, source: AsyncIterable[bytes], digest: Digest, limit: int | None,
                      too_large: LuckyError | None, expected_md5: str | None = None,
                      expected_size: int | None = None, sniff: bool = True) -> AsyncIterator[bytes]:
        """Pass the chunks on, hashing them in a thread; raise (so that nothing is stored)
        past `limit`, or at the end when the size or md5 is not what was expected."""
        first = sniff
        async for chunk in source:
            if not chunk:
                continue
            if first:
                first = False
                digest.image_format = images.sniff(chunk[:16])
                if digest.image_format is not None:
                    digest.spool = tempfile.SpooledTemporaryFile(max_size=4 * MIB)
            digest.size += len(chunk)
            if limit is not None and digest.size > limit:
                assert too_large is not None
                raise too_large
            await asyncio.to_thread(digest.update, chunk)
            yield chunk
        if expected_size is not None and digest.size != expected_size:
            raise validation_failed("body", f"expected {expected_size} bytes, got {digest.size}")
        if expected_md5 is not None and digest.md5.hexdigest() != expected_md5:
            raise checksum_mismatch("The bytes do not match their Content-MD5.",
                                    expected=expected_md5, actual=digest.md5.hexdigest())

    async def store_content(self, source: AsyncIterable[bytes], *, limit: int | None = None,
                            too_large: LuckyError | None = None, declared_mime: str | None = None,
                            expected_md5: str | None = None) -> StoredContent:
        """Stream content into a new blob, hashing it; reuse an identical stored blob instead.

        Images (recognised by their first bytes, or declared as a type Pillow reads) are
        decoded into their thumbnail here, so a bomb or a corrupt image is refused (422) and
        nothing stays stored.
        """
        blob_id = self._ids.next_id()
        key = blob_key(blob_id)
        digest = Digest()
        try:
            await self.blobs.put(key, self._hashed(source, digest, limit, too_large))
            md5 = digest.md5.hexdigest()
            if expected_md5 is not None and md5 != expected_md5:
                raise checksum_mismatch("The file's md5 does not match the md5 declared for the upload.",
                                        expected=expected_md5, actual=md5)
            image: ImageInfo | None = None
            if digest.image_format is not None and digest.spool is not None:
                image = await self._analyze(digest.spool)
            elif declared_mime in images.IMAGE_MIMES and digest.image_format is None:
                raise validation_failed("file", f"declared {declared_mime}, but the content is not an image")
        except BaseException:
            digest.close_spool()
            await _quietly(self.blobs.delete(key))
            raise
        digest.close_spool()
        sha256 = digest.sha256.hexdigest()
        for existing in await self.store.blobs_with(md5, digest.size):
            if existing.sha256 == sha256 and existing.backend == self.blobs.backend:
                await _quietly(self.blobs.delete(key))
                return StoredContent(existing, False, image)
        blob = BlobRow(blob_id, self.blobs.backend, key, digest.size, md5, sha256,
                       image.format if image else None, image.width if image else None,
                       image.height if image else None, self._clock.now_ms())
        if image is not None:
            await self._save_thumbnail(blob, image.thumbnail)
        return StoredContent(blob, True, image)

    async def _analyze(self, spool: IO[bytes]) -> ImageInfo:
        work = functools.partial(images.analyze, max_pixels=self.config.image_max_pixels,
                                 thumb_px=self.config.thumbnail_px)
        try:
            return await self._images.run(work, spool)
        except ImageRejected as exc:
            raise validation_failed("file", f"not accepted as an image: {exc}") from None

    async def _save_thumbnail(self, blob: BlobRow, data: bytes) -> None:
        async def one() -> AsyncIterator[bytes]:
            yield data

        try:
            await self.blobs.put(thumb_key(blob.id, self.config.thumbnail_px), one())
        except Exception:  # noqa: BLE001 - made again on first request
            log.warning("could not store the thumbnail of blob %s", blob.id, exc_info=True)

    async def create_file(self, owner_id: int, name: str, declared_mime: str | None, content: StoredContent,
                          tx_extra: Any = None, shared: bool = False) -> FileRow:
        """A file record for stored content (and the blob row if it is new), in one transaction;
        `shared`: readable by every signed-in user (an avatar image)."""
        file_id = self._ids.next_id()
        mime = choose_mime(declared_mime, name, images.MIME_OF.get(content.blob.image_format or ""))
        now = self._clock.now_ms()
        blob = content.blob

        async def write(tx: Tx) -> None:
            if content.fresh:
                await self.store.insert_blob(tx, blob)
            await self.store.insert_file(tx, file_id, owner_id, blob.id, name, mime, blob.size, blob.md5, now,
                                         shared)
            if tx_extra is not None:
                await tx_extra(tx, file_id)

        await self._db.transaction("file_create", write)
        created = await self.store.file(file_id)
        assert created is not None
        log.info("file %s stored for user %s: %d bytes, blob %s%s", file_id, owner_id, blob.size, blob.id,
                 "" if content.fresh else " (deduplicated)")
        return created

    async def upload_single(self, owner_id: int, raw_name: str, raw_mime: str | None,
                            source: AsyncIterable[bytes]) -> FileRow:
        """`POST /files`: stream one file into storage, within the size limit and quota."""
        name = clean_name(raw_name or "")
        if not name:
            raise validation_failed("file", "a file name (the part's filename)")
        declared = clean_mime(raw_mime)
        limit = self.max_single
        too_large = payload_too_large(f"A single upload holds at most {self.config.max_single_mb} MB; "
                                      "use a chunked upload (POST /api/v1/uploads) for more.",
                                      limit_bytes=limit)
        left = await self.quota_left(owner_id)
        if left is not None and left < limit:
            limit = left
            too_large = payload_too_large(f"This would exceed your storage quota of {self.config.quota_mb} MB.",
                                          quota_bytes=self.config.quota_mb * MIB, available_bytes=left)
        content = await self.store_content(coalesce(source), limit=limit, too_large=too_large,
                                           declared_mime=declared)
        return await self.create_file(owner_id, name, declared, content)

    # --- reading -------------------------------------------------------------------------

    async def can_read(self, user_id: int, file: FileRow) -> bool:
        """The uploader, anyone for an avatar, and the readers of a conversation holding a
        message that references the file (a former group member: up to when they left)."""
        if file.owner_id == user_id or file.shared:
            return True
        for conversation_id, seq in await self.store.refs(file.id):
            try:
                bound = await self.conversations.check_read(user_id, ConversationRef.parse(conversation_id))
            except LuckyError:
                continue
            if bound is None or seq <= bound:
                return True
        return False

    async def get(self, file_id: int) -> FileRow:
        file = await self.store.file(file_id)
        if file is None:
            raise not_found("No such file.")
        return file

    async def readable(self, user_id: int, file_id: int) -> FileRow:
        """The file if the user may read it; 404 otherwise (whether or not it exists)."""
        file = await self.store.file(file_id)
        if file is None or not await self.can_read(user_id, file):
            raise not_found("No such file, or you cannot read it.")
        return file

    async def signed(self, file_id: int, variant: str, exp: str | None, sig: str | None) -> FileRow:
        """The file a signed URL names; 403 if the signature is forged or expired."""
        problem = self.signer.check(file_id, variant, exp, sig, self._clock.now_ms())
        if problem is not None:
            raise LuckyError(403, "forbidden", f"This download link cannot be used: {problem}.",
                             {"reason": problem})
        return await self.get(file_id)

    def url(self, file: FileRow, variant: str = "content") -> str:
        """A signed URL for the file's content or thumbnail (see `files.url_ttl_s`)."""
        query = self.signer.query(file.id, variant, self._clock.now_ms())
        return f"{self.public_url}/api/v1/files/{file.id}/{variant}?{query}"

    def file_json(self, file: FileRow) -> dict[str, Any]:
        body: dict[str, Any] = {"id": str(file.id), "name": file.name, "size": file.size, "mime": file.mime,
                                "md5": file.md5, "url": self.url(file)}
        if file.blob.image_format is not None:
            body["thumbnail_url"] = self.url(file, "thumbnail")
            body["width"] = file.blob.width
            body["height"] = file.blob.height
        return body

    async def open_content(self, file: FileRow, offset: int = 0, length: int | None = None) -> BlobReader:
        try:
            return await self.blobs.read(file.blob.key, offset, length)
        except BlobNotFound:
            log.error("blob %s of file %s is missing from %s", file.blob.key, file.id, self.blobs.description)
            raise not_found("The file's content is missing from storage.") from None

    async def presigned_url(self, file: FileRow, disposition: str) -> str | None:
        """A direct URL to the bytes in S3, when `files.s3_presign` is on and they are there."""
        if not self.config.s3_presign or file.blob.backend != self.blobs.backend:
            return None
        return await self.blobs.presigned_url(file.blob.key, self.config.url_ttl_s, file.name, file.mime,
                                              disposition)

    async def thumbnail(self, file: FileRow) -> tuple[bytes, str]:
        """The image's thumbnail (made once, then read from the blob store) and its type."""
        if file.blob.image_format is None:
            raise not_found("This file has no thumbnail: it is not an image.")
        mime = images.thumbnail_format()[1]
        try:
            return await self.blobs.read_all(thumb_key(file.blob.id, self.config.thumbnail_px)), mime
        except BlobNotFound:
            pass
        # Made once even when many ask at once: later callers wait for the first one's work.
        pending = self._thumbs_in_flight.get(file.blob.id)
        if pending is None:
            pending = asyncio.ensure_future(self._make_thumbnail(file))
            self._thumbs_in_flight[file.blob.id] = pending
            pending.add_done_callback(lambda _: self._thumbs_in_flight.pop(file.blob.id, None))
        info = await asyncio.shield(pending)
        return info.thumbnail, info.thumbnail_mime

    async def _spool(self, file: FileRow, spool: IO[bytes]) -> None:
        """Copy a file's content into a spool (memory, then a temporary file) for Pillow."""
        reader = await self.open_content(file)
        try:
            async for chunk in reader:
                await asyncio.to_thread(spool.write, chunk)
        finally:
            await reader.close()

    async def _make_thumbnail(self, file: FileRow) -> ImageInfo:
        with tempfile.SpooledTemporaryFile(max_size=4 * MIB) as spool:
            await self._spool(file, spool)
            info = await self._analyze(spool)
        await self._save_thumbnail(file.blob, info.thumbnail)
        return info

    # --- other features' use of files ---------------------------------------------------------

    async def check_attach(self, user_id: int, file_id: int) -> None:
        """A media message may reference only a file that exists and its sender can read."""
        file = await self.store.file(file_id)
        if file is None or not await self.can_read(user_id, file):
            raise LuckyError(404, "not_found", "No such file, or you cannot read it: upload it first.",
                             {"field": "body.file_id", "reason": "not a file you can read"})

    async def attached(self, tx: Tx, message: Message) -> None:
        """Record, with the message, that its conversation now holds the file."""
        await self.store.add_ref(tx, int(message.body["file_id"]), message.id, message.conversation_id,
                                 message.seq, message.created_at)

    async def avatar(self, user_id: int, file_id: int, field_name: str = "avatar_file_id") -> FileRow:
        """A file the user can read, that is an image, to serve as an avatar."""
        file = await self.store.file(file_id)
        if file is None or not await self.can_read(user_id, file):
            raise LuckyError(404, "not_found", "No such file, or you cannot read it: upload it first.",
                             {"field": field_name, "reason": "not a file you can read"})
        if file.blob.image_format is None:
            raise validation_failed(field_name, "an image file (PNG, JPEG, GIF, WebP, BMP or TIFF)")
        return file

    async def make_avatar(self, user_id: int, file_id: int, field_name: str = "avatar_file_id") -> FileRow:
        """A new avatar image made from a file the user can read (404 otherwise, 422 if it is
        not an image), stored as a file of the user's that every signed-in user may read.

        The avatar is the centre square of the picture, at most `images.AVATAR_PX` a side,
        re-encoded without the source's metadata. The original file's readers do not change:
        sharing the original itself would hand anyone a file that was sent to a few. A file
        that is an avatar image already (readable by everyone) is used as it is.
        """
        file = await self.avatar(user_id, file_id, field_name)
        if file.shared:
            return file
        work = functools.partial(images.avatar, max_pixels=self.config.image_max_pixels)
        with tempfile.SpooledTemporaryFile(max_size=4 * MIB) as spool:
            await self._spool(file, spool)
            try:
                data, mime = await self._images.run(work, spool)
            except ImageRejected as exc:
                raise validation_failed(field_name, f"not accepted as an image: {exc}") from None

        async def one() -> AsyncIterator[bytes]:
            yield data

        content = await self.store_content(one(), declared_mime=mime)
        name = "avatar.png" if mime == "image/png" else "avatar.jpg"
        avatar = await self.create_file(user_id, name, mime, content, shared=True)
        log.info("avatar image %s made from file %s for user %s", avatar.id, file.id, user_id)
        return avatar

    async def use_as_user_avatar(self, user_id: int, file_id: int) -> int:
        """The id of the avatar image made from the file (see `make_avatar`)."""
        return (await self.make_avatar(user_id, file_id)).id

    # --- operations ----------------------------------------------------------------------

    async def cleanup_abandoned(self, now_ms: int | None = None) -> CleanupReport:
        """Remove uploads untouched for `files.upload_ttl_h` and their stored chunks."""
        return await self.uploads.cleanup(self._clock.now_ms() if now_ms is None else now_ms)

    async def cleanup_orphans(self, grace_ms: int, now_ms: int | None = None) -> OrphanReport:
        """Remove stored bytes nothing refers to (see `orphans`) last written over `grace_ms` ago."""
        now = self._clock.now_ms() if now_ms is None else now_ms
        return await OrphanSweep(self.blobs, self.store).run(now - grace_ms)

    async def stats(self) -> FileStats:
        return await self.store.stats()


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except Exception:  # noqa: BLE001 - best effort: a stray blob wastes space, nothing more
        log.warning("could not remove a blob", exc_info=True)
