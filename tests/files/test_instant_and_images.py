"""Instant uploads (a challenge, not a hash, gets you a file) and images (sizes, orientation,
thumbnails, bombs and corrupt data)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from typing import Any

from PIL import Image

from ..http.conftest import assert_error
from .conftest import MakeSite, Site, jpeg, md5_hex, png


async def _instant(site: Site, data: bytes) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    alice, bob = await site.user("alice"), await site.user("bob")
    original = await alice.uploaded(data, "song.mp3")
    status, upload = await bob.call("POST", "/api/v1/uploads",
                                    {"name": "mine.mp3", "size": len(data), "md5": md5_hex(data)})
    assert status == 201, upload
    return bob, original, upload


async def test_instant_upload_with_the_right_proof(site: Site) -> None:
    data = os.urandom(500_000)
    bob, original, upload = await _instant(site, data)
    challenge = upload["instant"]
    assert set(challenge) == {"offset", "length"}
    offset, length = challenge["offset"], challenge["length"]
    assert 0 < length <= len(data) and 0 <= offset <= len(data) - length
    proof = hashlib.md5(data[offset:offset + length]).hexdigest()
    status, file = await bob.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {"proof": proof})
    assert status == 201, file
    assert file["id"] != original["id"] and file["name"] == "mine.mp3" and file["md5"] == original["md5"]
    assert (await bob.download(file))[2] == data
    # his own record: the original stays alice's alone
    assert_error(await bob.call("GET", f"/api/v1/files/{original['id']}"), 404, "not_found")
    stats = await site.files.stats()
    assert stats.files == 2 and sum(n for n, _ in stats.blobs_by_backend.values()) == 1


async def test_a_hash_alone_does_not_get_the_file(site: Site) -> None:
    data = os.urandom(300_000)
    bob, _, upload = await _instant(site, data)
    path = f"/api/v1/uploads/{upload['upload_id']}/complete"
    for wrong in (md5_hex(data), "0" * 32, hashlib.md5(data[:65536]).hexdigest()
                  if upload["instant"]["offset"] else hashlib.md5(data[1:65537]).hexdigest()):
        assert_error(await bob.call("POST", path, {"proof": wrong}), 422, "checksum_mismatch")
    assert_error(await bob.call("POST", path, {"proof": "not hex"}), 422, "validation_failed", "proof")
    # the upload stays open: he can still send the bytes the ordinary way
    status, state = await bob.call("GET", f"/api/v1/uploads/{upload['upload_id']}")
    assert state["state"] == "open"
    chunk = upload["chunk_size"]
    for index in range(upload["chunks"]):
        assert (await bob.put_chunk(upload["upload_id"], index, data[index * chunk:(index + 1) * chunk]))[0] == 200
    status, file = await bob.call("POST", path, {})
    assert status == 201 and (await bob.download(file))[2] == data


async def test_a_proof_without_a_challenge_is_422(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(1000)
    status, upload = await alice.call("POST", "/api/v1/uploads", {"name": "a", "size": len(data), "md5": md5_hex(data)})
    assert "instant" not in upload
    assert_error(await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete",
                                  {"proof": md5_hex(data)}), 422, "validation_failed", "proof")


async def test_dimensions_follow_the_exif_orientation(site: Site) -> None:
    alice = await site.user("alice")
    upright = await alice.uploaded(jpeg(64, 32), "plain.jpg")
    assert (upright["width"], upright["height"]) == (64, 32) and upright["mime"] == "image/jpeg"
    turned = await alice.uploaded(jpeg(64, 32, orientation=6), "turned.jpg")  # stored sideways
    assert (turned["width"], turned["height"]) == (32, 64)
    _, _, thumb = await alice.raw("GET", f"/api/v1/files/{turned['id']}/thumbnail")
    assert Image.open(io.BytesIO(thumb)).size == (32, 64)


async def test_thumbnail_fits_the_configured_size_and_is_made_once(make_site: MakeSite) -> None:
    site = await make_site(files={"thumbnail_px": 64})
    alice = await site.user("alice")
    file = await alice.uploaded(png(400, 100), "wide.png")
    status, headers, thumb = await alice.raw("GET", f"/api/v1/files/{file['id']}/thumbnail")
    assert status == 200 and headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(thumb)).size == (64, 16)
    etag = headers["ETag"]
    assert (await alice.raw("GET", f"/api/v1/files/{file['id']}/thumbnail", headers={"If-None-Match": etag}))[0] == 304
    # made at upload and kept in the blob store: served from there, byte for byte
    stored = await site.files.store.file(int(file["id"]))
    assert stored is not None
    from lucky_server.files.model import thumb_key

    assert await site.files.blobs.read_all(thumb_key(stored.blob.id, 64)) == thumb
    # lost from the store, it is made again on request
    await site.files.blobs.delete(thumb_key(stored.blob.id, 64))
    assert (await alice.raw("GET", f"/api/v1/files/{file['id']}/thumbnail"))[2] == thumb


async def test_a_non_image_has_no_thumbnail(site: Site) -> None:
    alice = await site.user("alice")
    file = await alice.uploaded(b"plain text", "a.txt")
    assert "thumbnail_url" not in file and "width" not in file
    assert_error(await alice.call("GET", f"/api/v1/files/{file['id']}/thumbnail"), 404, "not_found")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds almost nothing: a bomb's header."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


async def test_a_decompression_bomb_is_refused_clearly(site: Site) -> None:
    alice = await site.user("alice")
    for width, height in ((20_000, 20_000), (100_000, 100_000)):  # over ours, and over Pillow's own limit
        error = assert_error(await alice.upload(_png_header_only(width, height), "bomb.png"), 422,
                             "validation_failed", "file")
        assert "pixels" in error["details"]["reason"]
    assert (await site.files.stats()).files == 0
    assert sum(n for n, _ in (await site.files.stats()).blobs_by_backend.values()) == 0


async def test_a_corrupt_or_truncated_image_is_refused_clearly(site: Site) -> None:
    alice = await site.user("alice")
    whole = jpeg(300, 200)
    error = assert_error(await alice.upload(whole[: len(whole) // 2], "cut.jpg"), 422, "validation_failed", "file")
    assert "corrupt" in error["details"]["reason"] or "truncated" in error["details"]["reason"]
    garbage = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    assert_error(await alice.upload(garbage, "noise.png"), 422, "validation_failed", "file")
    error = assert_error(await alice.upload(b"just words", "fake.png", "image/png"), 422, "validation_failed", "file")
    assert "not an image" in error["details"]["reason"]
    # through a chunked upload too; and the server is still fine afterwards
    status, upload = await alice.call("POST", "/api/v1/uploads", {"name": "cut.jpg", "size": len(whole) // 2,
                                                                 "md5": md5_hex(whole[: len(whole) // 2])})
    await alice.put_chunk(upload["upload_id"], 0, whole[: len(whole) // 2])
    assert_error(await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {}), 422,
                 "validation_failed", "file")
    assert (await alice.upload(png(), "fine.png"))[0] == 201


async def test_an_image_from_a_chunked_upload_is_an_image(site: Site) -> None:
    alice = await site.user("alice")
    big = png(1200, 900, compress_level=0)  # a few MiB: several chunks
    file = await alice.chunked(big, 256 * 1024, name="scan.png")
    assert (file["width"], file["height"], file["mime"]) == (1200, 900, "image/png")
    assert (await alice.raw("GET", f"/api/v1/files/{file['id']}/thumbnail"))[0] == 200
