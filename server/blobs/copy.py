"""Copying blobs from one store to another, each copy verified by reading it back.

`lucky files copy` moves a site's files (a folder to S3, one bucket to another): every key is
streamed from the source into the target while its sha256 is computed, then read back from
the target and hashed again; only a copy whose two hashes match the expected one counts. The
expected hash is the database's (`blobs.sha256`) where there is a row, so a blob damaged in
the source is reported rather than copied; keys without a row (thumbnails, chunks of uploads
in progress) are expected to be what the source holds now.

Resumable: a key whose target already has the expected size and sha256 is skipped, so a run
cut short (or a last pass with the nodes stopped) does only what is left. Nothing here knows
of the database or the CLI.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from . import BlobError, BlobNotFound, BlobStore

PARALLEL = 8  # keys in flight at once: enough to hide S3 round trips, few enough for a laptop


@dataclass(frozen=True)
class CopyItem:
    """One key to copy; `size` and `sha256` from the database when a row names the key."""

    key: str
    size: int | None = None
    sha256: str | None = None
    blob_id: int | None = None


class Outcome(enum.Enum):
    COPIED = "copied"
    SKIPPED = "skipped"  # already in the target with the right size and sha256
    FAILED = "failed"


@dataclass
class CopyReport:
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    verified_blob_ids: list[int] = field(default_factory=list)  # rows whose bytes are in the target

    @property
    def failed(self) -> int:
        return len(self.failures)


class CopyFailed(Exception):
    """One key could not be copied or verified; the message says why."""


async def digest_of(store: BlobStore, key: str) -> tuple[int, str] | None:
    """The size and sha256 of what `store` holds under `key`, read whole; None if missing."""
    try:
        reader = await store.read(key)
    except BlobNotFound:
        return None
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in reader:
            digest.update(chunk)
            size += len(chunk)
    finally:
        await reader.close()
    return size, digest.hexdigest()


class BlobCopier:
    """Copies (or, with `verify_only`, only checks) items from `source` to `target`."""

    def __init__(self, source: BlobStore, target: BlobStore, *, verify_only: bool = False,
                 parallel: int = PARALLEL, on_done: Callable[[CopyItem, Outcome], None] | None = None) -> None:
        self.source = source
        self.target = target
        self.verify_only = verify_only
        self.parallel = parallel
        self._on_done = on_done

    async def run(self, items: Sequence[CopyItem]) -> CopyReport:
        """Every item, `parallel` at a time; a failure is recorded and the others go on."""
        report = CopyReport()
        pending = iter(items)

        async def worker() -> None:
            for item in pending:  # one shared iterator: each item is taken by one worker
                try:
                    outcome, size = await self.one(item)
                except CopyFailed as exc:
                    report.failures.append((item.key, str(exc)))
                    outcome = Outcome.FAILED
                except (BlobError, OSError, ValueError) as exc:
                    report.failures.append((item.key, str(exc).strip() or type(exc).__name__))
                    outcome = Outcome.FAILED
                except Exception as exc:  # noqa: BLE001 - the S3 SDK's errors have no common base here
                    report.failures.append((item.key, f"{type(exc).__name__}: {exc}"))
                    outcome = Outcome.FAILED
                else:
                    if outcome is Outcome.COPIED:
                        report.copied += 1
                        report.bytes_copied += size
                    else:
                        report.skipped += 1
                    if item.blob_id is not None:
                        report.verified_blob_ids.append(item.blob_id)
                if self._on_done is not None:
                    self._on_done(item, outcome)

        await asyncio.gather(*(worker() for _ in range(max(1, self.parallel))))
        report.failures.sort()
        return report

    async def one(self, item: CopyItem) -> tuple[Outcome, int]:
        """Copy one key unless the target already matches; raises CopyFailed saying why not."""
        expected = await self._expected(item)
        if expected is not None and await self.target.size(item.key) == expected[0]:
            if await digest_of(self.target, item.key) == expected:
                return Outcome.SKIPPED, expected[0]
        if self.verify_only:
            found = await digest_of(self.target, item.key)
            raise CopyFailed("missing from the target" if found is None else
                             f"differs in the target ({found[0]} bytes, sha256 {found[1][:12]}...)")
        streamed = hashlib.sha256()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                reader = await self.source.read(item.key)
            except BlobNotFound:
                raise CopyFailed("missing from the source") from None
            try:
                async for chunk in reader:
                    streamed.update(chunk)
                    yield chunk
            finally:
                await reader.close()

        size = await self.target.put(item.key, chunks())
        wanted = expected or (size, streamed.hexdigest())
        if (size, streamed.hexdigest()) != wanted:
            # The source changed or is damaged: a copy of it must not pass for the file.
            await self.target.delete(item.key)
            raise CopyFailed(f"the source holds {size} bytes with another sha256 than the database records "
                             "(damaged or changed): not copied")
        if await digest_of(self.target, item.key) != wanted:
            raise CopyFailed("reads back differently from the target after the copy")
        return Outcome.COPIED, size

    async def _expected(self, item: CopyItem) -> tuple[int, str] | None:
        """The size and sha256 the target must hold: the database's, or (for a key without a
        row) the source's, hashed only when the target has a same-sized object to compare."""
        if item.size is not None and item.sha256 is not None:
            return item.size, item.sha256
        source_size = await self.source.size(item.key)
        if source_size is None:
            raise CopyFailed("missing from the source")
        if await self.target.size(item.key) != source_size:
            return None  # copied and hashed in one pass
        return await digest_of(self.source, item.key)
