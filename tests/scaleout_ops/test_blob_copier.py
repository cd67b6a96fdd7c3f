"""The copy-and-verify helper on two real folders (the S3 case is in test_files_copy.py)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from lucky_server.blobs.copy import BlobCopier, CopyItem, Outcome
from lucky_server.blobs.local import LocalBlobStore


async def put(store: LocalBlobStore, key: str, data: bytes) -> None:
    async def one() -> AsyncIterator[bytes]:
        yield data

    await store.put(key, one())


def row(key: str, data: bytes) -> CopyItem:
    return CopyItem(key, len(data), hashlib.sha256(data).hexdigest(), blob_id=int(key.rsplit("/", 1)[1]))


async def test_copies_then_skips_then_repairs(tmp_path: Path) -> None:
    source, target = LocalBlobStore(tmp_path / "a"), LocalBlobStore(tmp_path / "b")
    contents = {f"blobs/{i % 256:02x}/{i}": bytes([i]) * (i * 97) for i in range(1, 31)}
    for key, data in contents.items():
        await put(source, key, data)
    items = [row(k, d) for k, d in contents.items()]
    seen: list[Outcome] = []

    first = await BlobCopier(source, target, parallel=4, on_done=lambda _, o: seen.append(o)).run(items)
    assert (first.copied, first.skipped, first.failures) == (30, 0, [])
    assert seen == [Outcome.COPIED] * 30
    assert sorted(first.verified_blob_ids) == list(range(1, 31))
    for key, data in contents.items():
        assert await target.read_all(key) == data

    await put(target, "blobs/05/5", b"x" * len(contents["blobs/05/5"]))  # same size, other bytes
    await target.delete("blobs/07/7")
    checked = await BlobCopier(source, target, verify_only=True).run(items)
    assert checked.failures == [("blobs/05/5", checked.failures[0][1]), ("blobs/07/7", "missing from the target")]
    assert checked.failures[0][1].startswith("differs in the target")
    again = await BlobCopier(source, target).run(items)
    assert (again.copied, again.skipped, again.failures) == (2, 28, [])
    assert await target.read_all("blobs/05/5") == contents["blobs/05/5"]


async def test_a_source_that_is_not_what_the_database_recorded_is_not_copied(tmp_path: Path) -> None:
    source, target = LocalBlobStore(tmp_path / "a"), LocalBlobStore(tmp_path / "b")
    await put(source, "blobs/01/1", b"changed after upload")
    report = await BlobCopier(source, target).run([row("blobs/01/1", b"what was uploaded"),
                                                   row("blobs/02/2", b"never stored")])
    assert [key for key, _ in report.failures] == ["blobs/01/1", "blobs/02/2"]
    assert "another sha256 than the database records" in report.failures[0][1]
    assert report.failures[1][1] == "missing from the source"
    assert await target.size("blobs/01/1") is None and report.verified_blob_ids == []


async def test_keys_without_a_row_are_checked_against_the_source(tmp_path: Path) -> None:
    source, target = LocalBlobStore(tmp_path / "a"), LocalBlobStore(tmp_path / "b")
    await put(source, "thumbs/01/1-256", b"thumbnail bytes")
    items = [CopyItem("thumbs/01/1-256")]
    assert (await BlobCopier(source, target).run(items)).copied == 1
    assert (await BlobCopier(source, target).run(items)).skipped == 1
    await put(target, "thumbs/01/1-256", b"thumbnail BYTES")
    report = await BlobCopier(source, target).run(items)
    assert (report.copied, report.verified_blob_ids) == (1, [])
    assert await target.read_all("thumbs/01/1-256") == b"thumbnail bytes"
