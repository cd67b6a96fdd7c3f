"""Chunked, resumable uploads (`/api/v1/uploads`), instant uploads, and their clean-up.

Each chunk is stored as its own blob (`uploads/<id>/<index>`) as it arrives, in any order and
as often as the client likes (a re-sent chunk replaces the first, atomically, and only once its
length and `Content-MD5` check out). `complete` streams the chunks in order into one new blob,
hashing as it goes, and refuses the result unless its md5 is the one declared at the start.

Instant upload: when content with the declared md5 and size is already stored, the answer to
`POST /uploads` holds a challenge, a random byte range of that content, never all of it (half,
at most 64 KiB; content under 1 KiB gets no challenge, and is simply uploaded). Completing with
the md5 of those bytes proves the caller has the file (not just its hash), and gets a file
record at once. Knowing a file's md5 and size is therefore not enough to obtain a copy of it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..blobs import BlobNotFound
from ..errors import LuckyError, conflict, not_found, validation_failed
from ..storage import Tx
from ..storage.stores.files import FileRow, UploadRow
from .model import (CleanupReport, Digest, StoredContent, challenge_range, checksum_mismatch, chunk_count,
                    coalesce, parse_md5, payload_too_large)
from .naming import clean_mime, clean_name

if TYPE_CHECKING:
    from .service import FileService

log = logging.getLogger(__name__)

KIB = 1024
MIN_CHUNK = 256 * KIB
MAX_CHUNK = 64 * KIB * KIB
DEFAULT_CHUNK = 5 * KIB * KIB
COMPLETION_LEASE_MS = 15 * 60 * 1000  # a completion that died holds the upload no longer than this
STATES = {"open": "open", "busy": "completing", "done": "completed"}


def chunk_key(upload_id: int, index: int) -> str:
    return f"uploads/{upload_id}/{index}"


def _has_challenge(upload: UploadRow) -> bool:
    """Whether the upload may be completed by a proof. Not when the challenge covers the whole
    content, as an upload opened by an older server may: its md5 was the caller's own."""
    return (upload.instant_blob_id is not None and upload.challenge_length is not None
            and upload.challenge_length < upload.size)


@dataclass(frozen=True)
class UploadView:
    upload: UploadRow
    received: list[int]

    def to_json(self) -> dict[str, Any]:
        u = self.upload
        body: dict[str, Any] = {"upload_id": str(u.id), "chunk_size": u.chunk_size, "chunks": u.chunks,
                                "received": self.received, "state": STATES.get(u.state, u.state)}
        if _has_challenge(u) and u.state != "done":
            body["instant"] = {"offset": u.challenge_offset, "length": u.challenge_length}
        if u.file_id is not None:
            body["file_id"] = str(u.file_id)
        return body


class UploadService:
    def __init__(self, files: FileService) -> None:
        self._files = files
        self._store = files.store

    def _expected_size(self, upload: UploadRow, index: int) -> int:
        if index < upload.chunks - 1:
            return upload.chunk_size
        return upload.size - upload.chunk_size * (upload.chunks - 1)

    async def open(self, owner_id: int, name: str, size: int, md5: str, mime: str | None,
                   chunk_size: int | None) -> UploadView:
        """`POST /uploads`: start an upload (with an instant-upload challenge if the content is known)."""
        files = self._files
        clean = clean_name(name)
        if not clean:
            raise validation_failed("name", "a file name")
        if size < 0:
            raise validation_failed("size", "a byte count, 0 or more")
        if size > files.max_upload:
            raise payload_too_large(f"An upload holds at most {files.config.max_upload_mb} MB.",
                                    limit_bytes=files.max_upload)
        md5 = parse_md5(md5, "md5")
        declared = None
        if mime is not None:
            declared = clean_mime(mime)
            if declared is None:
                raise validation_failed("mime", "a MIME type such as image/png")
        chunk_size = DEFAULT_CHUNK if chunk_size is None else chunk_size
        if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
            raise validation_failed("chunk_size", f"{MIN_CHUNK} to {MAX_CHUNK} bytes")
        await files.check_quota(owner_id, size)
        now = files._clock.now_ms()
        instant_blob: int | None = None
        offset = length = None
        proof: str | None = None
        challenge = challenge_range(size)
        if challenge is not None:
            for blob in await self._store.blobs_with(md5, size):
                if blob.backend != files.blobs.backend:
                    continue
                offset, length = challenge
                try:
                    data = await files.blobs.read_all(blob.key, offset, length)
                except BlobNotFound:
                    continue
                instant_blob, proof = blob.id, hashlib.md5(data).hexdigest()
                break
        upload = UploadRow(files._ids.next_id(), owner_id, clean, declared or "", size, md5, chunk_size,
                           chunk_count(size, chunk_size), "open", 0, None, instant_blob,
                           offset if instant_blob else None, length if instant_blob else None, proof, now, now)
        await self._store.insert_upload(upload)
        return UploadView(upload, [])

    async def _own(self, owner_id: int, upload_id: int) -> UploadRow:
        upload = await self._store.upload(upload_id)
        if upload is None or upload.owner_id != owner_id:
            raise not_found("No such upload (it may have been completed long ago, or abandoned and removed).")
        return upload

    async def status(self, owner_id: int, upload_id: int) -> UploadView:
        """`GET /uploads/{id}`: which chunks arrived, so that a client can resume."""
        upload = await self._own(owner_id, upload_id)
        return UploadView(upload, [c.index for c in await self._store.chunks(upload_id)])

    @staticmethod
    def _require_open(upload: UploadRow) -> None:
        if upload.state == "done":
            raise conflict("This upload is already complete.", {"file_id": str(upload.file_id)})
        if upload.state == "busy":
            raise conflict("This upload is being completed; wait for that to finish.")

    async def put_chunk(self, owner_id: int, upload_id: int, index: int, source: AsyncIterable[bytes],
                        content_md5: str | None, content_length: int | None) -> UploadView:
        """Store one chunk (again, if it was sent before); 422 on a wrong length or md5."""
        upload = await self._own(owner_id, upload_id)
        self._require_open(upload)
        if not 0 <= index < upload.chunks:
            raise validation_failed("index", f"a chunk index from 0 to {upload.chunks - 1}"
                                    if upload.chunks else "this upload has no chunks")
        expected = self._expected_size(upload, index)
        wrong_length = validation_failed("body", f"chunk {index} is {expected} bytes")
        if content_length is not None and content_length != expected:
            raise wrong_length
        digest = Digest(sha256=None)
        key = chunk_key(upload_id, index)
        stream = self._files._hashed(coalesce(source), digest, expected, wrong_length, content_md5, expected,
                                     sniff=False)
        await self._files.blobs.put(key, stream)
        if not await self._store.put_chunk(upload_id, index, digest.size, digest.md5.hexdigest(),
                                           self._files._clock.now_ms()):
            # Completed or removed while this chunk streamed in: it is not needed.
            await self._files.blobs.delete(key)
            raise conflict("This upload is no longer open for chunks.")
        return await self.status(owner_id, upload_id)

    async def complete(self, owner_id: int, upload_id: int, proof: str | None) -> tuple[FileRow, bool]:
        """`POST /uploads/{id}/complete`: the file, and whether it was created just now
        (False: the upload was completed before, and this repeats the answer)."""
        files = self._files
        upload = await self._own(owner_id, upload_id)
        if upload.state == "done" and upload.file_id is not None:
            return await files.get(upload.file_id), False
        content: StoredContent | None = None
        if proof is not None:
            proof = parse_md5(proof, "proof")
            if (not _has_challenge(upload) or upload.instant_blob_id is None
                    or upload.challenge_md5 is None):
                raise validation_failed("proof", "this upload has no instant-upload challenge; send its chunks")
            if not hmac.compare_digest(proof, upload.challenge_md5):
                raise checksum_mismatch("The proof is not the md5 of the challenged bytes; upload the chunks "
                                        "instead (the upload stays open).")
            blob = await self._store.blob(upload.instant_blob_id)
            if blob is None:
                raise conflict("The stored copy is gone; upload the chunks instead.")
            content = StoredContent(blob, False, None)
        else:
            have = {c.index for c in await self._store.chunks(upload_id)}
            missing = [i for i in range(upload.chunks) if i not in have]
            if missing:
                raise conflict(f"{len(missing)} chunk(s) not received yet.", {"missing": missing})
        now = files._clock.now_ms()
        if not await self._store.claim(upload_id, now, now + COMPLETION_LEASE_MS):
            again = await self._own(owner_id, upload_id)
            if again.state == "done" and again.file_id is not None:
                return await files.get(again.file_id), False
            raise conflict("This upload is being completed; wait for that to finish.")
        try:
            if content is None:
                content = await files.store_content(self._assemble(upload), declared_mime=upload.mime or None,
                                                    expected_md5=upload.md5)

            async def finish(tx: Tx, file_id: int) -> None:
                await self._store.finish(tx, upload_id, file_id, files._clock.now_ms())

            file = await files.create_file(owner_id, upload.name, upload.mime or None, content, finish)
        except BaseException:
            await self._store.release(upload_id, files._clock.now_ms())
            raise
        try:
            await files.blobs.delete_prefix(f"uploads/{upload_id}")
        except Exception:  # noqa: BLE001 - the clean-up removes them later
            log.warning("could not remove the chunks of upload %s", upload_id, exc_info=True)
        return file, True

    async def _assemble(self, upload: UploadRow) -> AsyncIterator[bytes]:
        for index in range(upload.chunks):
            try:
                reader = await self._files.blobs.read(chunk_key(upload.id, index))
            except BlobNotFound:
                raise LuckyError(409, "conflict", f"Chunk {index} is missing from storage; send it again.",
                                 {"missing": [index]}) from None
            try:
                async for chunk in reader:
                    yield chunk
            finally:
                await reader.close()

    async def cleanup(self, now_ms: int) -> CleanupReport:
        """Remove uploads untouched for `files.upload_ttl_h` (abandoned ones with their chunks,
        and completed ones, kept that long only to repeat their `complete` answer)."""
        before = now_ms - self._files.config.upload_ttl_h * 3600 * 1000
        removed = chunks = 0
        while True:
            stale = await self._store.stale_uploads(before, 200)
            for upload in stale:
                # The row first (unless a chunk touched it meanwhile), then its chunks: a chunk
                # arriving in between finds no upload, and removes itself.
                if await self._store.delete_upload(upload.id, upload.updated_at):
                    removed += 1
                    chunks += await self._files.blobs.delete_prefix(f"uploads/{upload.id}")
            if len(stale) < 200:
                break
        if removed:
            log.info("removed %d stale upload(s) and %d stored chunk(s)", removed, chunks)
        return CleanupReport(removed, chunks)
