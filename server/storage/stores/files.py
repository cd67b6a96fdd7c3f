"""Blobs (stored content), file records, chunked uploads and file references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class BlobRow:
    id: int
    backend: str
    key: str
    size: int
    md5: str
    sha256: str
    image_format: str | None
    width: int | None
    height: int | None
    created_at: int

    @classmethod
    def from_row(cls, row: Row) -> BlobRow:
        return cls(int(row["id"]), row["backend"], row["blob_key"], int(row["size"]), row["md5"], row["sha256"],
                   row["image_format"], _opt_int(row["width"]), _opt_int(row["height"]), int(row["created_at"]))


@dataclass(frozen=True)
class FileRow:
    id: int
    owner_id: int
    name: str
    mime: str
    size: int
    md5: str
    shared: bool
    created_at: int
    blob: BlobRow

    @classmethod
    def from_row(cls, row: Row) -> FileRow:
        blob = BlobRow(int(row["blob_id"]), row["backend"], row["blob_key"], int(row["size"]), row["md5"],
                       row["sha256"], row["image_format"], _opt_int(row["width"]), _opt_int(row["height"]),
                       int(row["blob_created_at"]))
        return cls(int(row["id"]), int(row["owner_id"]), row["name"], row["mime"], int(row["size"]), row["md5"],
                   bool(row["shared"]), int(row["created_at"]), blob)


@dataclass(frozen=True)
class UploadRow:
    id: int
    owner_id: int
    name: str
    mime: str
    size: int
    md5: str
    chunk_size: int
    chunks: int
    state: str  # open, busy (being completed), done
    busy_until: int
    file_id: int | None
    instant_blob_id: int | None
    challenge_offset: int | None
    challenge_length: int | None
    challenge_md5: str | None
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Row) -> UploadRow:
        return cls(int(row["id"]), int(row["owner_id"]), row["name"], row["mime"], int(row["size"]), row["md5"],
                   int(row["chunk_size"]), int(row["chunks"]), row["state"], int(row["busy_until"]),
                   _opt_int(row["file_id"]), _opt_int(row["instant_blob_id"]), _opt_int(row["challenge_offset"]),
                   _opt_int(row["challenge_length"]), row["challenge_md5"], int(row["created_at"]),
                   int(row["updated_at"]))


@dataclass(frozen=True)
class ChunkRow:
    index: int
    size: int
    md5: str


@dataclass(frozen=True)
class FileStats:
    files: int
    file_bytes: int
    owners: int
    blobs_by_backend: dict[str, tuple[int, int]]  # backend -> (blobs, bytes stored)
    open_uploads: int
    upload_bytes: int  # bytes of chunks received by open uploads


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


_BLOB = "SELECT id, backend, blob_key, size, md5, sha256, image_format, width, height, created_at FROM blobs "
_FILE = ("SELECT f.id, f.owner_id, f.blob_id, f.name, f.mime, f.size, f.md5, f.shared, f.created_at, "
         "b.backend, b.blob_key, b.sha256, b.image_format, b.width, b.height, b.created_at AS blob_created_at "
         "FROM files f JOIN blobs b ON b.id = f.blob_id ")
_UPLOAD = ("SELECT id, owner_id, name, mime, size, md5, chunk_size, chunks, state, busy_until, file_id, "
           "instant_blob_id, challenge_offset, challenge_length, challenge_md5, created_at, updated_at FROM uploads ")


class FileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- blobs ---------------------------------------------------------------------------

    async def blob(self, blob_id: int) -> BlobRow | None:
        row = await self._db.fetch_one(_BLOB + "WHERE id = ?", (blob_id,))
        return BlobRow.from_row(row) if row else None

    async def blobs_with(self, md5: str, size: int) -> list[BlobRow]:
        """Stored contents with this md5 and size (more than one only after an md5 collision)."""
        rows = await self._db.fetch_all(_BLOB + "WHERE md5 = ? AND size = ? ORDER BY id LIMIT 8", (md5, size))
        return [BlobRow.from_row(r) for r in rows]

    async def insert_blob(self, tx: Tx, blob: BlobRow) -> None:
        await tx.execute(
            "INSERT INTO blobs (id, backend, blob_key, size, md5, sha256, image_format, width, height, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (blob.id, blob.backend, blob.key, blob.size, blob.md5, blob.sha256, blob.image_format, blob.width,
             blob.height, blob.created_at))

    # --- files ---------------------------------------------------------------------------

    async def file(self, file_id: int) -> FileRow | None:
        row = await self._db.fetch_one(_FILE + "WHERE f.id = ?", (file_id,))
        return FileRow.from_row(row) if row else None

    async def insert_file(self, tx: Tx, file_id: int, owner_id: int, blob_id: int, name: str, mime: str,
                          size: int, md5: str, now_ms: int, shared: bool = False) -> None:
        """A file record; `shared` ones (avatar images) are readable by every signed-in user.
        A record is shared from its creation or never: sharing an existing file would open
        it to everyone, whoever else it was sent to."""
        await tx.execute(
            "INSERT INTO files (id, owner_id, blob_id, name, mime, size, md5, shared, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (file_id, owner_id, blob_id, name, mime, size, md5, shared, now_ms))

    async def used_bytes(self, owner_id: int) -> int:
        """What counts against the owner's quota: their files, and uploads they have opened."""
        files = await self._db.fetch_one("SELECT COALESCE(SUM(size), 0) AS n FROM files WHERE owner_id = ?",
                                         (owner_id,))
        uploads = await self._db.fetch_one(
            "SELECT COALESCE(SUM(size), 0) AS n FROM uploads WHERE owner_id = ? AND state <> 'done'", (owner_id,))
        return int(files["n"] if files else 0) + int(uploads["n"] if uploads else 0)

    # --- references ------------------------------------------------------------------------

    async def add_ref(self, tx: Tx, file_id: int, message_id: int, conversation_id: str, seq: int,
                      now_ms: int) -> None:
        await tx.execute(
            "INSERT INTO file_refs (file_id, message_id, conversation_id, seq, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (file_id, message_id) DO NOTHING",
            (file_id, message_id, conversation_id, seq, now_ms))

    async def refs(self, file_id: int, limit: int = 1000) -> list[tuple[str, int]]:
        """(conversation id, the lowest seq referencing the file there), for each conversation."""
        rows = await self._db.fetch_all(
            "SELECT conversation_id, MIN(seq) AS seq FROM file_refs WHERE file_id = ? "
            "GROUP BY conversation_id ORDER BY conversation_id LIMIT ?", (file_id, limit))
        return [(r["conversation_id"], int(r["seq"])) for r in rows]

    # --- uploads -------------------------------------------------------------------------

    async def insert_upload(self, upload: UploadRow) -> None:
        await self._db.execute(
            "upload_open",
            "INSERT INTO uploads (id, owner_id, name, mime, size, md5, chunk_size, chunks, state, busy_until, "
            "file_id, instant_blob_id, challenge_offset, challenge_length, challenge_md5, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (upload.id, upload.owner_id, upload.name, upload.mime, upload.size, upload.md5, upload.chunk_size,
             upload.chunks, upload.state, upload.busy_until, upload.file_id, upload.instant_blob_id,
             upload.challenge_offset, upload.challenge_length, upload.challenge_md5, upload.created_at,
             upload.updated_at))

    async def upload(self, upload_id: int) -> UploadRow | None:
        row = await self._db.fetch_one(_UPLOAD + "WHERE id = ?", (upload_id,))
        return UploadRow.from_row(row) if row else None

    async def chunks(self, upload_id: int) -> list[ChunkRow]:
        rows = await self._db.fetch_all(
            "SELECT idx, size, md5 FROM upload_chunks WHERE upload_id = ? ORDER BY idx", (upload_id,))
        return [ChunkRow(int(r["idx"]), int(r["size"]), r["md5"]) for r in rows]

    async def put_chunk(self, upload_id: int, index: int, size: int, md5: str, now_ms: int) -> bool:
        """Record a stored chunk (again, if re-sent); False if the upload is no longer open."""

        async def write(tx: Tx) -> bool:
            touched = await tx.execute(
                "UPDATE uploads SET updated_at = ? WHERE id = ? AND state = 'open'", (now_ms, upload_id))
            if not touched:
                return False
            await tx.execute(
                "INSERT INTO upload_chunks (upload_id, idx, size, md5, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (upload_id, idx) DO UPDATE SET size = excluded.size, md5 = excluded.md5, "
                "created_at = excluded.created_at",
                (upload_id, index, size, md5, now_ms))
            return True

        return await self._db.transaction("upload_chunk", write)

    async def claim(self, upload_id: int, now_ms: int, busy_until: int) -> bool:
        """Mark an open upload as being completed (so two completions cannot race); False if
        it is done, or busy with a completion that has not yet timed out."""
        changed = await self._db.execute(
            "upload_claim",
            "UPDATE uploads SET state = 'busy', busy_until = ?, updated_at = ? "
            "WHERE id = ? AND (state = 'open' OR (state = 'busy' AND busy_until < ?))",
            (busy_until, now_ms, upload_id, now_ms))
        return changed == 1

    async def release(self, upload_id: int, now_ms: int) -> None:
        """A completion failed: the upload is open for chunks again."""
        await self._db.execute(
            "upload_release",
            "UPDATE uploads SET state = 'open', busy_until = 0, updated_at = ? WHERE id = ? AND state = 'busy'",
            (now_ms, upload_id))

    async def finish(self, tx: Tx, upload_id: int, file_id: int, now_ms: int) -> None:
        await tx.execute("UPDATE uploads SET state = 'done', file_id = ?, updated_at = ? WHERE id = ?",
                         (file_id, now_ms, upload_id))
        await tx.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (upload_id,))

    async def stale_uploads(self, before_ms: int, limit: int) -> list[UploadRow]:
        """Uploads untouched since `before_ms`: abandoned ones, and finished ones past their
        retention (a finished upload is kept a while so a repeated `complete` gets its file)."""
        rows = await self._db.fetch_all(_UPLOAD + "WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
                                        (before_ms, limit))
        return [UploadRow.from_row(r) for r in rows]

    async def delete_upload(self, upload_id: int, updated_at: int) -> bool:
        """Delete an upload and its chunk rows, unless it was touched since `updated_at`."""

        async def write(tx: Tx) -> bool:
            gone = await tx.execute("DELETE FROM uploads WHERE id = ? AND updated_at = ?", (upload_id, updated_at))
            if gone:
                await tx.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (upload_id,))
            return gone == 1

        return await self._db.transaction("upload_delete", write)

    # --- clean-up of orphaned blobs ------------------------------------------------------------

    async def existing_blobs(self, blob_ids: Sequence[int]) -> set[int]:
        """Which of these blob ids have a `blobs` row."""
        return await self._existing("blobs", blob_ids)

    async def existing_uploads(self, upload_ids: Sequence[int]) -> set[int]:
        """Which of these upload ids have an `uploads` row."""
        return await self._existing("uploads", upload_ids)

    async def _existing(self, table: str, ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        unique = sorted(set(ids))
        for start in range(0, len(unique), 500):
            part = unique[start:start + 500]
            rows = await self._db.fetch_all(
                f"SELECT id FROM {table} WHERE id IN ({', '.join('?' * len(part))})", part)
            found.update(int(r["id"]) for r in rows)
        return found

    # --- statistics ------------------------------------------------------------------------

    async def stats(self) -> FileStats:
        files = await self._db.fetch_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes, COUNT(DISTINCT owner_id) AS owners FROM files")
        blobs = await self._db.fetch_all(
            "SELECT backend, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM blobs GROUP BY backend "
            "ORDER BY backend")
        uploads = await self._db.fetch_one("SELECT COUNT(*) AS n FROM uploads WHERE state <> 'done'")
        received = await self._db.fetch_one(
            "SELECT COALESCE(SUM(c.size), 0) AS bytes FROM upload_chunks c JOIN uploads u ON u.id = c.upload_id "
            "WHERE u.state <> 'done'")
        assert files is not None and uploads is not None and received is not None
        return FileStats(int(files["n"]), int(files["bytes"]), int(files["owners"]),
                         {r["backend"]: (int(r["n"]), int(r["bytes"])) for r in blobs},
                         int(uploads["n"]), int(received["bytes"]))


def chunk_indexes(chunks: Sequence[ChunkRow]) -> list[int]:
    return [c.index for c in chunks]
