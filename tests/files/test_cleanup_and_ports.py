"""The abandoned-upload clean-up, the BlobStore port on both backends, readiness, the CLI."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lucky_server.blobs import BlobNotFound, BlobStore, check_key, open_blob_store

from ..cli.process import lucky
from ..http.conftest import assert_error
from .conftest import MakeSite, Site, md5_hex

CHUNK = 256 * 1024


async def test_abandoned_uploads_are_removed_after_the_ttl(make_site: MakeSite) -> None:
    site = await make_site(files={"upload_ttl_h": 2}, auth={"access_ttl_s": 86400})
    alice = await site.user("alice")
    data = os.urandom(2 * CHUNK)
    _, abandoned = await alice.call("POST", "/api/v1/uploads",
                                    {"name": "a", "size": len(data), "md5": md5_hex(data), "chunk_size": CHUNK})
    await alice.put_chunk(abandoned["upload_id"], 0, data[:CHUNK])
    site.clock.advance(3600)
    _, active = await alice.call("POST", "/api/v1/uploads",
                                 {"name": "b", "size": len(data), "md5": md5_hex(data), "chunk_size": CHUNK})
    await alice.put_chunk(active["upload_id"], 0, data[:CHUNK])
    done = await alice.chunked(os.urandom(CHUNK), CHUNK)
    assert (await site.files.stats()).open_uploads == 2
    # an hour later the first is 2 h old: gone, with its chunk; the others stay
    site.clock.advance(3600 + 1)
    report = await site.files.cleanup_abandoned()
    assert (report.uploads_removed, report.chunks_removed) == (1, 1)
    stats = await site.files.stats()
    assert stats.open_uploads == 1 and stats.upload_bytes == CHUNK and stats.files == 1
    # the clean-up is idempotent
    assert (await site.files.cleanup_abandoned()).uploads_removed == 0
    # the removed upload is unknown now
    assert_error(await alice.call("GET", f"/api/v1/uploads/{abandoned['upload_id']}"), 404, "not_found")
    # much later everything untouched goes, the completed upload's record too (its file stays)
    site.clock.advance(3 * 3600)
    report = await site.files.cleanup_abandoned()
    assert report.uploads_removed == 2
    stats = await site.files.stats()
    assert stats.open_uploads == 0 and stats.upload_bytes == 0 and stats.files == 1
    assert done["size"] == CHUNK


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _failing(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise RuntimeError("the client went away")


async def test_blob_store_port(site: Site) -> None:
    store: BlobStore = site.files.blobs
    one = os.urandom(3 * 1024 * 1024 + 5)
    assert await store.put("t/one", _chunks(one[:1000], one[1000:])) == len(one)
    assert await store.size("t/one") == len(one)
    assert await store.read_all("t/one") == one
    assert await store.read_all("t/one", 10, 20) == one[10:30]
    assert await store.read_all("t/one", len(one) - 3) == one[-3:]
    # a failing stream stores nothing and leaves what was there
    with pytest.raises(RuntimeError):
        await store.put("t/one", _failing(b"partial"))
    with pytest.raises(RuntimeError):
        await store.put("t/two", _failing(b"partial"))
    assert await store.read_all("t/one") == one
    assert await store.size("t/two") is None
    with pytest.raises(BlobNotFound):
        await store.read("t/two")
    # replace, delete, delete by prefix
    await store.put("t/one", _chunks(b"new"))
    assert await store.read_all("t/one") == b"new"
    await store.put("t/sub/a", _chunks(b"a"))
    await store.put("t/sub/b", _chunks(b"b"))
    assert await store.delete_prefix("t/sub") == 2
    assert await store.size("t/sub/a") is None
    await store.delete("t/one")
    await store.delete("t/one")  # missing is fine
    assert await store.size("t/one") is None
    assert await store.check()


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "A/b", "a//b", ".tmp/x", "", "a/"])
def test_keys_are_never_paths(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


async def test_readyz_reports_the_blob_store(site: Site, make_site: MakeSite, storage: str) -> None:
    status, body = await site.anonymous.call("GET", "/readyz")
    assert status == 200 and body["checks"]["storage"]["ok"] is True
    down = "file:///proc/forbidden" if storage == "local" else "s3://k:s@127.0.0.1:1/nobucket?secure=false"
    broken = await make_site(storage={"url": down})
    status, body = await broken.anonymous.call("GET", "/readyz")
    assert status == 503 and body["checks"]["storage"]["ok"] is False


async def test_s3_check_makes_a_missing_bucket_and_fails_when_unreachable(s3_endpoint: str) -> None:
    store = open_blob_store(f"s3://k:s@{s3_endpoint}/made-by-check-{os.getpid()}?secure=false")
    try:
        assert "reachable" in await store.check()
        assert await store.size("nothing/here") is None
    finally:
        await store.close()
    store = open_blob_store("s3://k:s@127.0.0.1:1/bucket?secure=false")
    try:
        with pytest.raises(Exception):
            await store.check()
    finally:
        await store.close()


def test_lucky_files_stats(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-password", "admin secret 1").code == 0
    empty = lucky("files", "stats", "--data-dir", data_dir)
    assert empty.code == 0, empty
    assert "files" in empty.out and "blobs" not in empty.out and "open uploads" in empty.out
    cleanup = lucky("files", "cleanup", "--data-dir", data_dir)
    assert cleanup.code == 0 and "removed 0 stale upload(s)" in cleanup.out
    assert lucky("files", "stats", "--data-dir", tmp_path / "nowhere").code != 0
