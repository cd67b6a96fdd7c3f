"""The blob rows `lucky files copy` walks, and the label it moves once every copy is verified."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import Database, Tx

_IN_BATCH = 500


@dataclass(frozen=True)
class StoredBlob:
    """What the database knows of one stored content: where, how big, its sha256."""

    id: int
    backend: str
    key: str
    size: int
    sha256: str


class BlobCopyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, after_id: int, limit: int) -> list[StoredBlob]:
        """Blob rows with an id above `after_id`, in id order (a keyset page: stable while
        uploads go on)."""
        rows = await self._db.fetch_all(
            "SELECT id, backend, blob_key, size, sha256 FROM blobs WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit))
        return [StoredBlob(int(r["id"]), str(r["backend"]), str(r["blob_key"]), int(r["size"]), str(r["sha256"]))
                for r in rows]

    async def relabel(self, blob_ids: Sequence[int], backend: str) -> int:
        """Record that these blobs are now on a `backend` store; how many rows changed.

        The label is what backups and presigned downloads go by (they only take blobs on the
        kind of store the site is configured with)."""

        async def write(tx: Tx) -> int:
            changed = 0
            unique = sorted(set(blob_ids))
            for start in range(0, len(unique), _IN_BATCH):
                part = unique[start:start + _IN_BATCH]
                changed += await tx.execute(
                    f"UPDATE blobs SET backend = ? WHERE backend <> ? AND id IN ({', '.join('?' * len(part))})",
                    (backend, backend, *part))
            return changed

        return await self._db.transaction("relabel_copied_blobs", write)
