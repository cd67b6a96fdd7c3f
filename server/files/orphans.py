"""Finding and removing stored bytes that nothing refers to any more (the cleanup.blobs job).

How blobs are referenced today: a `blobs` row per stored content (key `blobs/<xx>/<id>`),
shared by every file record of that content and never deleted (no file is ever deleted), so
a `blobs` row always has a file; its thumbnails are `thumbs/<xx>/<id>-<px>`; chunks of an
upload in progress are `uploads/<upload id>/<index>`, removed with their upload. Bytes are
written before the row that names them is committed, so a crash, or a failed dedup or chunk
removal, can leave:

- a blob under `blobs/` with no `blobs` row (stored, then the file's transaction never ran);
- a thumbnail whose blob id has no `blobs` row;
- chunks under `uploads/<id>/` whose upload row is gone.

Each is removed only once older than `jobs.orphan_grace_h`: a blob being written right now
(by this node, another node, or the CLI) has no row *yet*, and must not be touched. Keys of any
other shape are never removed. Blob rows without a file would also be orphans, but nothing
can produce one today (see above), so none are looked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..blobs import BlobEntry, BlobStore
from ..storage.stores.files import FileStore

log = logging.getLogger(__name__)

# prefix -> the owner id a key names (a blob id, or an upload id)
_SHAPES = {
    "blobs": re.compile(r"blobs/[0-9a-f]{2}/([0-9]{1,20})"),
    "thumbs": re.compile(r"thumbs/[0-9a-f]{2}/([0-9]{1,20})-[0-9]+"),
    "uploads": re.compile(r"uploads/([0-9]{1,20})/[0-9]+"),
}
BATCH = 500


@dataclass(frozen=True)
class OrphanReport:
    blobs: int
    thumbnails: int
    chunks: int
    bytes: int

    def summary(self) -> str:
        return (f"removed {self.blobs} orphaned blob(s), {self.thumbnails} thumbnail(s) and {self.chunks} "
                f"upload chunk(s), {self.bytes} bytes")


class OrphanSweep:
    def __init__(self, blobs: BlobStore, store: FileStore) -> None:
        self._blobs = blobs
        self._store = store

    async def run(self, older_than_ms: int) -> OrphanReport:
        """Remove every orphan last written before `older_than_ms`."""
        counts = {}
        removed_bytes = 0
        owners: dict[str, Callable[[Sequence[int]], Awaitable[set[int]]]] = {
            "blobs": self._store.existing_blobs, "thumbs": self._store.existing_blobs,
            "uploads": self._store.existing_uploads}
        for prefix, existing in owners.items():
            count = 0
            batch: list[tuple[BlobEntry, int]] = []
            async for entry in self._blobs.listing(prefix):
                found = _SHAPES[prefix].fullmatch(entry.key)
                if found is None or entry.modified_ms >= older_than_ms:
                    continue
                batch.append((entry, int(found.group(1))))
                if len(batch) >= BATCH:
                    n, size = await self._remove(batch, existing)
                    count, removed_bytes, batch = count + n, removed_bytes + size, []
            n, size = await self._remove(batch, existing)
            counts[prefix] = count + n
            removed_bytes += size
        report = OrphanReport(counts["blobs"], counts["thumbs"], counts["uploads"], removed_bytes)
        if report.blobs or report.thumbnails or report.chunks:
            log.info("orphaned blobs clean-up in %s: %s", self._blobs.description, report.summary())
        return report

    async def _remove(self, batch: list[tuple[BlobEntry, int]],
                      existing: Callable[[Sequence[int]], Awaitable[set[int]]]) -> tuple[int, int]:
        if not batch:
            return 0, 0
        known = await existing([owner for _, owner in batch])
        count = size = 0
        for entry, owner in batch:
            if owner in known:
                continue
            await self._blobs.delete(entry.key)
            log.debug("removed orphaned blob %s (%d bytes)", entry.key, entry.size)
            count += 1
            size += entry.size
        return count, size
