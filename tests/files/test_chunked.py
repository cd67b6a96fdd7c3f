"""Chunked uploads: any order, repeats, resuming, and every way one can go wrong."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from ..http.conftest import assert_error
from .conftest import MakeSite, Site, User, content_md5, md5_hex

CHUNK = 256 * 1024


async def _open(user: User, data: bytes, chunk_size: int = CHUNK, **extra: Any) -> dict[str, Any]:
    status, upload = await user.call("POST", "/api/v1/uploads", {
        "name": "movie.mp4", "size": len(data), "md5": md5_hex(data), "chunk_size": chunk_size, **extra})
    assert status == 201, upload
    return dict(upload)


def _piece(data: bytes, index: int, chunk_size: int = CHUNK) -> bytes:
    return data[index * chunk_size:(index + 1) * chunk_size]


async def test_chunks_in_any_order_and_repeated(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(5 * CHUNK + 1234)
    upload = await _open(alice, data)
    assert upload["chunks"] == 6 and upload["chunk_size"] == CHUNK and upload["received"] == []
    assert "instant" not in upload
    for index in (5, 2, 0, 2, 4, 1, 3, 5):  # out of order, some twice
        piece = _piece(data, index)
        with_md5 = content_md5(piece) if index % 2 else None
        status, body = await alice.put_chunk(upload["upload_id"], index, piece, with_md5)
        assert status == 200, body
    status, state = await alice.call("GET", f"/api/v1/uploads/{upload['upload_id']}")
    assert status == 200 and state["received"] == [0, 1, 2, 3, 4, 5] and state["state"] == "open"
    status, file = await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {})
    assert status == 201, file
    assert file["size"] == len(data) and file["md5"] == md5_hex(data) and file["name"] == "movie.mp4"
    assert file["mime"] == "video/mp4"
    assert (await alice.download(file))[2] == data
    # a repeated complete answers the same file, 200
    assert await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {}) == (200, file)
    status, state = await alice.call("GET", f"/api/v1/uploads/{upload['upload_id']}")
    assert state["state"] == "completed" and state["file_id"] == file["id"]
    # and the chunks are gone from storage
    assert (await site.files.stats()).upload_bytes == 0


async def test_default_chunk_size_is_5_mib(site: Site) -> None:
    alice = await site.user("alice")
    status, upload = await alice.call("POST", "/api/v1/uploads", {"name": "a", "size": 11 * 1024 * 1024,
                                                                  "md5": "0" * 32})
    assert status == 201 and upload["chunk_size"] == 5 * 1024 * 1024 and upload["chunks"] == 3


async def test_resume_after_a_dropped_connection(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(3 * CHUNK)
    upload = await _open(alice, data)
    await alice.put_chunk(upload["upload_id"], 0, _piece(data, 0))
    # chunk 1 starts, and the connection drops halfway through its body
    server = site.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (f"PUT /api/v1/uploads/{upload['upload_id']}/chunks/1 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {alice.api.token}\r\nContent-Length: {CHUNK}\r\n\r\n")
    writer.write(head.encode() + _piece(data, 1)[:CHUNK // 2])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # the client asks what arrived, and sends the rest
    status, state = await alice.call("GET", f"/api/v1/uploads/{upload['upload_id']}")
    assert status == 200 and 1 not in state["received"] and 0 in state["received"]
    missing = [i for i in range(state["chunks"]) if i not in state["received"]]
    for index in missing:
        assert (await alice.put_chunk(upload["upload_id"], index, _piece(data, index)))[0] == 200
    status, file = await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {})
    assert status == 201, file
    assert (await alice.download(file))[2] == data


async def test_a_chunk_whose_content_md5_differs_is_422_and_the_good_one_stays(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(2 * CHUNK)
    upload = await _open(alice, data)
    good = _piece(data, 0)
    assert (await alice.put_chunk(upload["upload_id"], 0, good, content_md5(good)))[0] == 200
    bad = bytes([good[0] ^ 1]) + good[1:]
    error = assert_error(await alice.put_chunk(upload["upload_id"], 0, bad, content_md5(good)), 422,
                         "checksum_mismatch")
    assert error["details"]["expected"] == md5_hex(good)
    assert_error(await alice.put_chunk(upload["upload_id"], 1, _piece(data, 1), "bm90IGFuIG1kNQ=="), 422,
                 "validation_failed", "Content-MD5")
    assert (await alice.put_chunk(upload["upload_id"], 1, _piece(data, 1)))[0] == 200
    status, file = await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {})
    assert status == 201, file
    assert (await alice.download(file))[2] == data


async def test_whole_file_md5_mismatch_is_422_and_the_upload_stays_open(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(2 * CHUNK + 10)
    upload = await _open(alice, data)
    corrupt = bytearray(_piece(data, 1))
    corrupt[100] ^= 0xFF
    for index, piece in ((0, _piece(data, 0)), (1, bytes(corrupt)), (2, _piece(data, 2))):
        assert (await alice.put_chunk(upload["upload_id"], index, piece))[0] == 200
    path = f"/api/v1/uploads/{upload['upload_id']}/complete"
    error = assert_error(await alice.call("POST", path, {}), 422, "checksum_mismatch")
    assert error["details"]["expected"] == md5_hex(data)
    status, state = await alice.call("GET", f"/api/v1/uploads/{upload['upload_id']}")
    assert state["state"] == "open" and state["received"] == [0, 1, 2]
    assert (await site.files.stats()).files == 0
    assert (await alice.put_chunk(upload["upload_id"], 1, _piece(data, 1)))[0] == 200  # fixed
    status, file = await alice.call("POST", path, {})
    assert status == 201 and (await alice.download(file))[2] == data


async def test_complete_with_chunks_missing_is_409_naming_them(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(4 * CHUNK)
    upload = await _open(alice, data)
    await alice.put_chunk(upload["upload_id"], 2, _piece(data, 2))
    error = assert_error(await alice.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {}), 409,
                         "conflict")
    assert error["details"]["missing"] == [0, 1, 3]


@pytest.mark.parametrize("index", ["4", "99", "-1", "x", "1.5"])
async def test_an_index_out_of_range_is_422(site: Site, index: str) -> None:
    alice = await site.user("alice")
    data = os.urandom(4 * CHUNK)
    upload = await _open(alice, data)
    status, body = await alice.api.call("PUT", f"/api/v1/uploads/{upload['upload_id']}/chunks/{index}",
                                        data=b"x" * CHUNK)
    assert_error((status, body), 422, "validation_failed", "index")


async def test_a_chunk_of_the_wrong_length_is_422(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(CHUNK + 100)
    upload = await _open(alice, data)
    assert_error(await alice.put_chunk(upload["upload_id"], 0, _piece(data, 0)[:-1]), 422, "validation_failed", "body")
    assert_error(await alice.put_chunk(upload["upload_id"], 1, b"y" * 101), 422, "validation_failed", "body")
    # without a Content-Length the body is counted as it streams
    async def stream() -> Any:
        yield b"z" * 60
        yield b"z" * 60

    status, body = await alice.api.call("PUT", f"/api/v1/uploads/{upload['upload_id']}/chunks/1", data=stream())
    assert_error((status, body), 422, "validation_failed", "body")
    status, state = await alice.call("GET", f"/api/v1/uploads/{upload['upload_id']}")
    assert state["received"] == []


async def test_unknown_and_other_peoples_uploads_are_404(site: Site) -> None:
    alice, bob = await site.user("alice"), await site.user("bob")
    data = os.urandom(CHUNK)
    upload = await _open(alice, data)
    uid = upload["upload_id"]
    for who, target in ((alice, "123456789"), (bob, uid), (alice, "nope")):
        assert_error(await who.call("GET", f"/api/v1/uploads/{target}"), 404, "not_found")
        assert_error(await who.put_chunk(target, 0, data), 404, "not_found")
        assert_error(await who.call("POST", f"/api/v1/uploads/{target}/complete", {}), 404, "not_found")
    assert_error(await site.anonymous.call("GET", f"/api/v1/uploads/{uid}"), 401, "unauthorized")


async def test_chunks_after_completion_are_409(site: Site) -> None:
    alice = await site.user("alice")
    data = os.urandom(CHUNK)
    file = await alice.chunked(data)
    status, uploads = await alice.call("POST", "/api/v1/uploads", {"name": "x", "size": 1, "md5": md5_hex(b"x")})
    await alice.put_chunk(uploads["upload_id"], 0, b"x")
    assert (await alice.call("POST", f"/api/v1/uploads/{uploads['upload_id']}/complete", {}))[0] == 201
    assert_error(await alice.put_chunk(uploads["upload_id"], 0, b"x"), 409, "conflict")
    assert file["size"] == CHUNK


@pytest.mark.parametrize("body, field", [
    ({"size": 10, "md5": "0" * 32}, "name"),
    ({"name": "a", "md5": "0" * 32}, "size"),
    ({"name": "a", "size": 10}, "md5"),
    ({"name": "a", "size": 10, "md5": "xyz"}, "md5"),
    ({"name": "a", "size": -1, "md5": "0" * 32}, "size"),
    ({"name": "a", "size": "10", "md5": "0" * 32}, "size"),
    ({"name": "", "size": 10, "md5": "0" * 32}, "name"),
    ({"name": "a", "size": 10, "md5": "0" * 32, "chunk_size": 1024}, "chunk_size"),
    ({"name": "a", "size": 10, "md5": "0" * 32, "chunk_size": 65 * 1024 * 1024}, "chunk_size"),
    ({"name": "a", "size": 10, "md5": "0" * 32, "mime": "not a type"}, "mime"),
])
async def test_bad_upload_requests_are_422(site: Site, body: dict[str, Any], field: str) -> None:
    alice = await site.user("alice")
    assert_error(await alice.call("POST", "/api/v1/uploads", body), 422, "validation_failed", field)


async def test_declared_size_over_the_limit_is_413(make_site: MakeSite) -> None:
    site = await make_site(files={"max_upload_mb": 2, "quota_mb": 3})
    alice = await site.user("alice")
    over = {"name": "a", "size": 2 * 1024 * 1024 + 1, "md5": "0" * 32}
    assert_error(await alice.call("POST", "/api/v1/uploads", over), 413, "payload_too_large")
    at = {**over, "size": 2 * 1024 * 1024}
    assert (await alice.call("POST", "/api/v1/uploads", at))[0] == 201
    # an open upload counts against the quota: 2 MB reserved, 2 more would pass 3
    error = assert_error(await alice.call("POST", "/api/v1/uploads", at), 413, "payload_too_large")
    assert "quota" in error["message"]
