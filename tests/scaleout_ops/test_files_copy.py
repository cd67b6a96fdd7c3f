"""`lucky files copy --to URL`: a SQLite site's files moved to S3, verified, then served from there."""

from __future__ import annotations

from urllib.parse import urlsplit

from minio import Minio

from ..cli.process import lucky
from ..services import free_port
from .conftest import Site, set_key


def bucket(url: str) -> tuple[Minio, str]:
    """A client of the target bucket, to look at (and damage) what the copy left there."""
    parts = urlsplit(url)
    return Minio(f"{parts.hostname}:{parts.port}", access_key="testkey", secret_key="testsecret",
                 secure=False), parts.path.strip("/")


def keys_in(url: str) -> set[str]:
    client, name = bucket(url)
    return {str(o.object_name) for o in client.list_objects(name, recursive=True)}


def summary(out: str) -> dict[str, str]:
    """The summary table's rows: what -> keys."""
    rows: dict[str, str] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) == 2 and cells[0]:
            rows[cells[0]] = cells[1]
    return rows


def test_files_copied_to_s3_are_served_from_there_byte_for_byte(site: Site, bucket_url: str) -> None:
    copied = lucky("files", "copy", "--to", bucket_url, "--data-dir", site.data_dir)
    assert copied.code == 0, copied
    rows = summary(copied.out)
    # Four contents (the two hello files share one blob) and the image's thumbnail.
    assert rows["copied"].startswith("5 "), copied.out
    assert rows["failed"] == "0"
    assert "storage.url" in copied.out and "testsecret" not in copied.out + copied.err
    stored = keys_in(bucket_url)
    assert len([k for k in stored if k.startswith("blobs/")]) == 4
    assert len([k for k in stored if k.startswith("thumbs/")]) == 1

    set_key(site.data_dir, "storage", "url", bucket_url)
    stats = lucky("files", "stats", "--data-dir", site.data_dir)
    assert "blobs on s3" in stats.out and "blobs on local" not in stats.out, stats.out
    served = site.serve()
    try:
        token = site.token(served)
        for file_id, data in site.uploaded.items():
            assert site.download(served, token, file_id) == (200, data)
        for file_id, thumbnail in site.thumbnails.items():
            assert site.download(served, token, file_id, "thumbnail") == (200, thumbnail)
        # New uploads go to the bucket; one of content already there reuses the copied blob
        # (its row now says s3), so nothing is stored twice.
        fresh = site.upload(served, token, b"uploaded after the move", "after.txt", "text/plain")
        known = site.upload(served, token, b"hello from the embedded default\n", "third.txt", "text/plain")
        assert site.download(served, token, fresh["id"]) == (200, b"uploaded after the move")
        assert site.download(served, token, known["id"]) == (200, b"hello from the embedded default\n")
        assert len([k for k in keys_in(bucket_url) if k.startswith("blobs/")]) == 5
    finally:
        served.stop()

    again = lucky("files", "copy", "--to", bucket_url, "--data-dir", site.data_dir)
    assert again.code == 1  # storage.url is the bucket now: nothing to copy to itself
    assert "already" in again.assert_one_line_error()


def test_a_missing_or_damaged_copy_is_found_and_copied_again(site: Site, bucket_url: str) -> None:
    assert lucky("files", "copy", "--to", bucket_url, "--data-dir", site.data_dir).code == 0
    client, name = bucket(bucket_url)
    blobs = sorted(k for k in keys_in(bucket_url) if k.startswith("blobs/"))
    big = max(blobs, key=lambda k: client.stat_object(name, k).size or 0)
    small = next(k for k in blobs if k != big and (client.stat_object(name, k).size or 0) > 0)
    client.remove_object(name, big)
    size = client.stat_object(name, small).size or 0
    import io

    client.put_object(name, small, io.BytesIO(b"x" * size), size)  # same size, other bytes

    checked = lucky("files", "copy", "--to", bucket_url, "--verify-only", "--data-dir", site.data_dir)
    assert checked.code == 1, checked
    assert f"failed: {big}: missing from the target" in checked.out
    assert f"failed: {small}: differs in the target" in checked.out
    assert summary(checked.out)["failed"] == "2"
    assert "run the same command again" in checked.assert_one_line_error()

    resumed = lucky("files", "copy", "--to", bucket_url, "--data-dir", site.data_dir)
    assert resumed.code == 0, resumed
    rows = summary(resumed.out)
    assert rows["copied"].startswith("2 ") and rows["skipped (already there)"] == "3", resumed.out

    verified = lucky("files", "copy", "--to", bucket_url, "--verify-only", "--data-dir", site.data_dir)
    assert verified.code == 0, verified
    assert summary(verified.out)["matching"] == "5"


def test_a_blob_damaged_in_the_source_is_reported_not_copied(site: Site, bucket_url: str) -> None:
    blobs = sorted(p for p in (site.data_dir / "files" / "blobs").rglob("*") if p.is_file())
    damaged = max(blobs, key=lambda p: p.stat().st_size)
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    key = damaged.relative_to(site.data_dir / "files").as_posix()

    result = lucky("files", "copy", "--to", bucket_url, "--data-dir", site.data_dir)
    assert result.code == 1, result
    assert f"failed: {key}: the source holds" in result.out
    assert key not in keys_in(bucket_url)
    stats = lucky("files", "stats", "--data-dir", site.data_dir)
    assert "blobs on s3" not in stats.out  # nothing is recorded as moved while a key failed


def test_bad_target_urls_are_one_line_errors(site: Site) -> None:
    closed = f"s3://k:SeCrEt@127.0.0.1:{free_port()}/bucket?secure=false"
    for url, says in [("ftp://example.com/x", "unsupported storage URL"),
                      ("s3://k:SeCrEt@127.0.0.1:9000/?secure=false", "names no bucket"),
                      ("s3://k:SeCrEt@127.0.0.1:port/b", "not a storage URL"),
                      (closed, "cannot use s3 127.0.0.1"),
                      (f"file://{site.data_dir / 'files'}", "already")]:
        result = lucky("files", "copy", "--to", url, "--data-dir", site.data_dir)
        assert says in result.assert_one_line_error(code=1), (url, result)
        assert "SeCrEt" not in result.err  # a secret in the URL is not echoed


def test_a_folder_target_works_too(site: Site) -> None:
    folder = site.data_dir.parent / "moved"
    result = lucky("files", "copy", "--to", f"file://{folder}", "--data-dir", site.data_dir)
    assert result.code == 0, result
    for path in (site.data_dir / "files" / "blobs").rglob("*"):
        if path.is_file():
            moved = folder / path.relative_to(site.data_dir / "files")
            assert moved.read_bytes() == path.read_bytes()
