"""Moving a site's files to another store (`lucky files copy`): which keys, and the record after.

Every blob a `blobs` row names is copied and checked against the row's size and sha256; then
whatever else the source holds under `blobs/`, `thumbs/` and `uploads/` (thumbnails, chunks
of uploads in progress, blobs whose file was never recorded), checked against the source
itself, so that nothing a node could ask for is left behind. Once every key is verified the
rows say the bytes are on the target's kind of store (`blobs.backend`), which is what backups
and presigned downloads go by.
"""

from __future__ import annotations

from ..blobs import BlobStore
from ..blobs.copy import BlobCopier, CopyItem, CopyReport
from ..storage import Database
from ..storage.stores.blob_copies import BlobCopyStore

PREFIXES = ("blobs", "thumbs", "uploads")
_PAGE = 1000


async def items_to_copy(db: Database, source: BlobStore) -> list[CopyItem]:
    """The blob rows' keys (with their recorded size and sha256), then the source's other keys."""
    store = BlobCopyStore(db)
    items: list[CopyItem] = []
    after = 0
    while True:
        page = await store.page(after, _PAGE)
        items += [CopyItem(row.key, row.size, row.sha256, row.id) for row in page]
        if len(page) < _PAGE:
            break
        after = page[-1].id
    named = {item.key for item in items}
    for prefix in PREFIXES:
        async for entry in source.listing(prefix):
            if entry.key not in named:
                items.append(CopyItem(entry.key))
    return items


async def copy_files(db: Database, copier: BlobCopier, items: list[CopyItem]) -> tuple[CopyReport, int]:
    """Copy (or verify) every item; when none failed and bytes were copied for real, relabel
    the verified rows with the target's backend. The report and how many rows changed."""
    report = await copier.run(items)
    relabelled = 0
    if not report.failures and not copier.verify_only:
        relabelled = await BlobCopyStore(db).relabel(report.verified_blob_ids, copier.target.backend)
    return report, relabelled
