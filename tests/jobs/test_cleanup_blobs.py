"""cleanup.blobs and cleanup.uploads on both databases and both blob stores (a local folder
and a real S3 server): exactly the bytes nothing refers to go, and only once past the grace."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

from lucky_server.blobs import BlobStore
from lucky_server.jobs.service import JobService

from ..files.conftest import MakeSite, Site, md5_hex, png

HOUR_MS = 3_600_000


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _put(blobs: BlobStore, key: str, data: bytes) -> None:
    assert await blobs.put(key, _one(data)) == len(data)


async def _keys(blobs: BlobStore, prefix: str) -> set[str]:
    return {entry.key async for entry in blobs.listing(prefix)}


async def test_the_listing_shows_each_key_with_its_size_and_time(site: Site, backend: str) -> None:
    blobs = site.files.blobs
    before = time.time() * 1000 - 5000  # the S3 server's clock rounds to seconds
    await _put(blobs, "blobs/0a/10", b"x" * 10)
    await _put(blobs, "blobs/0b/11", b"y" * 3)
    await _put(blobs, "thumbs/0a/10-256", b"z")
    entries = {entry.key: entry async for entry in blobs.listing("blobs")}
    assert set(entries) == {"blobs/0a/10", "blobs/0b/11"}
    assert (entries["blobs/0a/10"].size, entries["blobs/0b/11"].size) == (10, 3)
    assert all(before <= entry.modified_ms <= time.time() * 1000 + 5000 for entry in entries.values())
    assert await _keys(blobs, "uploads") == set()


async def test_orphaned_blobs_thumbnails_and_chunks_go_after_the_grace_and_nothing_else(
        site: Site, backend: str) -> None:
    alice = await site.user("alice")
    photo = await alice.uploaded(png(), "photo.png", "image/png")
    notes = await alice.uploaded(b"notes " * 100, "notes.txt", "text/plain")
    status, thumbnail = (await alice.raw("GET", f"/api/v1/files/{photo['id']}/thumbnail"))[0::2]
    assert status == 200
    data = os.urandom(300 * 1024)
    _, upload = await alice.call("POST", "/api/v1/uploads",
                                 {"name": "big", "size": len(data), "md5": md5_hex(data), "chunk_size": 256 * 1024})
    assert (await alice.put_chunk(upload["upload_id"], 0, data[:256 * 1024]))[0] == 200  # in progress: stays
    blobs = site.files.blobs
    kept = await _keys(blobs, "blobs") | await _keys(blobs, "thumbs") | await _keys(blobs, "uploads")
    # what a crash or a failed removal leaves behind
    await _put(blobs, "blobs/7b/123", b"a" * 1000)  # stored, its file's transaction never ran
    await _put(blobs, "thumbs/7b/123-256", b"b" * 100)  # the thumbnail of a blob with no row
    await _put(blobs, "uploads/999/0", b"c" * 10)  # a chunk of an upload that is gone
    await _put(blobs, "uploads/999/1", b"d" * 10)
    # keys of no shape the files service makes, and other prefixes: never touched
    await _put(blobs, "blobs/zz/not-an-id", b"e")
    await _put(blobs, "backups/lucky-1.tar", b"f")
    strangers = {"blobs/zz/not-an-id"}

    now = int(time.time() * 1000)
    young = await site.files.cleanup_orphans(grace_ms=HOUR_MS, now_ms=now)
    assert (young.blobs, young.thumbnails, young.chunks, young.bytes) == (0, 0, 0, 0)  # all within the grace

    report = await site.files.cleanup_orphans(grace_ms=HOUR_MS, now_ms=now + 2 * HOUR_MS)
    assert (report.blobs, report.thumbnails, report.chunks, report.bytes) == (1, 1, 2, 1120)
    assert report.summary() == "removed 1 orphaned blob(s), 1 thumbnail(s) and 2 upload chunk(s), 1120 bytes"
    left = await _keys(blobs, "blobs") | await _keys(blobs, "thumbs") | await _keys(blobs, "uploads")
    assert left == kept | strangers
    assert await blobs.size("backups/lucky-1.tar") == 1
    # every file still downloads, the thumbnail is still stored, the upload completes
    for file, size in ((photo, photo["size"]), (notes, 600)):
        status, _, body = await alice.download(file)
        assert (status, len(body)) == (200, size)
    assert (await alice.raw("GET", f"/api/v1/files/{photo['id']}/thumbnail"))[2] == thumbnail
    assert (await alice.put_chunk(upload["upload_id"], 1, data[256 * 1024:]))[0] == 200
    status, file = await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {})
    assert status == 201 and file["size"] == len(data)
    # nothing more to remove
    again = await site.files.cleanup_orphans(grace_ms=HOUR_MS, now_ms=now + 2 * HOUR_MS)
    assert (again.blobs, again.thumbnails, again.chunks) == (0, 0, 0)


async def test_the_blob_and_upload_jobs_run_by_name(make_site: MakeSite, backend: str) -> None:
    site = await make_site(auth={"access_ttl_s": 3 * 86400})
    site.clock.advance(time.time() - site.clock.now_ms() / 1000)  # the site's clock at the real time
    await _put(site.files.blobs, "uploads/4242/0", b"old chunk")
    alice = await site.user("alice")
    _, upload = await alice.call("POST", "/api/v1/uploads", {"name": "a", "size": 300 * 1024,
                                                             "md5": md5_hex(b"x"), "chunk_size": 256 * 1024})
    jobs = JobService.of(site.core)
    # the orphan is seconds old, well within jobs.orphan_grace_h (24 h): kept
    assert (await jobs.run_now("cleanup.blobs")).summary == \
        "removed 0 orphaned blob(s), 0 thumbnail(s) and 0 upload chunk(s), 0 bytes"
    site.clock.advance(25 * 3600)  # past the grace, and past files.upload_ttl_h
    result = await jobs.run_now("cleanup.uploads")
    assert (result.outcome, result.summary) == ("ok", "removed 1 stale upload(s) and 0 stored chunk(s)")
    assert (await alice.call("GET", f"/api/v1/uploads/{upload['upload_id']}"))[0] == 404
    result = await jobs.run_now("cleanup.blobs")
    assert (result.outcome, result.summary) == (
        "ok", "removed 0 orphaned blob(s), 0 thumbnail(s) and 1 upload chunk(s), 9 bytes")
    assert await _keys(site.files.blobs, "uploads") == set()
