"""`POST /api/v1/files` and downloads: bytes round-trip, headers, ranges, conditional requests."""

from __future__ import annotations

import os

from ..http.conftest import assert_error
from .conftest import Site, md5_hex, png


async def test_upload_then_download_round_trips(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(3 * 1024 * 1024 + 17)
    file = await alice.uploaded(data, "report.bin")
    assert set(file) == {"id", "name", "size", "mime", "md5", "url"}
    assert file["name"] == "report.bin" and file["size"] == len(data) and file["md5"] == md5_hex(data)
    assert file["mime"] == "application/octet-stream"
    status, headers, body = await alice.download(file)
    assert status == 200 and body == data
    assert headers["ETag"] == f'"{md5_hex(data)}"'
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Disposition"].startswith('attachment; filename="report.bin"')
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, got = await alice.call("GET", f"/api/v1/files/{file['id']}")
    assert status == 200 and got["id"] == file["id"] and got["md5"] == file["md5"]


async def test_empty_file(site: Site) -> None:
    alice = await site.user("alice")
    file = await alice.uploaded(b"", "empty.txt")
    assert file["size"] == 0 and file["mime"] == "text/plain"
    status, _, body = await alice.download(file)
    assert status == 200 and body == b""


async def test_image_gets_dimensions_and_thumbnail(site: Site) -> None:
    alice = await site.user("alice")
    file = await alice.uploaded(png(400, 300), "photo.png")
    assert file["mime"] == "image/png" and (file["width"], file["height"]) == (400, 300)
    assert "/thumbnail?" in file["thumbnail_url"]
    status, headers, body = await alice.raw("GET", f"/api/v1/files/{file['id']}/thumbnail")
    assert status == 200, body
    assert headers["Content-Type"] == "image/webp"


async def test_not_multipart_is_415(site: Site) -> None:
    alice = await site.user("alice")
    assert_error(await alice.call("POST", "/api/v1/files", {"file": "x"}), 415, "unsupported_media_type")
