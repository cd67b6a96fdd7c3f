"""Downloads: Range, ETag and If-None-Match, safe names and types, signed URLs, limits."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import pytest

from ..http.conftest import assert_error
from .conftest import MakeSite, Site, User, md5_hex

DATA = bytes(range(256)) * 4096  # 1 MiB, every byte value


async def _file(site: Site) -> tuple[User, dict[str, str]]:
    alice = await site.user("alice")
    return alice, await alice.uploaded(DATA, "data.bin")


@pytest.mark.parametrize("header, start, end", [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-", 1000, len(DATA) - 1),
    ("bytes=-500", len(DATA) - 500, len(DATA) - 1),
    ("bytes=100-99999999", 100, len(DATA) - 1),
    ("bytes=1048575-1048575", len(DATA) - 1, len(DATA) - 1),
])
async def test_range_answers_206_with_those_bytes(site: Site, header: str, start: int, end: int) -> None:
    alice, file = await _file(site)
    status, headers, body = await alice.download(file, {"Range": header})
    assert status == 206
    assert body == DATA[start:end + 1]
    assert headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert int(headers["Content-Length"]) == end - start + 1


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=9-3"])
async def test_a_range_this_server_does_not_serve_means_the_whole_file(site: Site, header: str) -> None:
    alice, file = await _file(site)
    status, _, body = await alice.download(file, {"Range": header})
    assert status == 200 and body == DATA


async def test_a_range_past_the_end_is_416(site: Site) -> None:
    alice, file = await _file(site)
    status, headers, body = await alice.download(file, {"Range": f"bytes={len(DATA)}-"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_if_range_with_another_etag_sends_everything(site: Site) -> None:
    alice, file = await _file(site)
    status, _, body = await alice.download(file, {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert status == 200 and body == DATA
    status, _, body = await alice.download(file, {"Range": "bytes=0-9", "If-Range": f'"{file["md5"]}"'})
    assert status == 206 and body == DATA[:10]


async def test_if_none_match_answers_304(site: Site) -> None:
    alice, file = await _file(site)
    etag = f'"{md5_hex(DATA)}"'
    for header in (etag, f'"x", {etag}', "*", f"W/{etag}"):
        status, headers, body = await alice.download(file, {"If-None-Match": header})
        assert status == 304 and body == b"" and headers["ETag"] == etag
    status, _, body = await alice.download(file, {"If-None-Match": '"stale"'})
    assert status == 200 and body == DATA


@pytest.mark.parametrize("raw, stored", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/abs/path/report.pdf", "report.pdf"),
    ("bad\r\nheader\".txt", "badheader\".txt"),
])
async def test_a_name_is_a_label_never_a_path(site: Site, raw: str, stored: str) -> None:
    alice = await site.user("alice")
    if "\r" in raw:  # aiohttp's client refuses control characters: only a browser's escapes
        status, file = await alice.upload_as_browser(b"secret-ish", raw)
        assert status == 201, file
    else:  # aiohttp's client percent-encodes the name
        file = await alice.uploaded(b"secret-ish", raw)
        if "\\" not in raw:  # in a quoted header, a backslash escapes the next character
            assert (await alice.upload_as_browser(b"secret-ish", raw))[1]["name"] == stored
    assert file["name"] == stored
    _, headers, body = await alice.download(file)
    assert body == b"secret-ish"
    disposition = headers["Content-Disposition"]
    assert "/" not in disposition.split("filename*=")[0] and "\r" not in disposition and "\n" not in disposition
    assert disposition.count('"') == 2  # the fallback name is quoted once, with no quote inside
    # nothing was written outside the blob store: no file of that name anywhere near
    assert not any(p.name == stored for p in site.core.config.data_dir.rglob("*"))


async def test_unicode_name_is_given_exactly_and_as_ascii(site: Site) -> None:
    alice = await site.user("alice")
    file = await alice.uploaded(b"x", "报告 ü.txt")
    _, headers, _ = await alice.download(file)
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"__ _.txt\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%C3%BC.txt")


async def test_html_is_an_attachment_that_cannot_run(site: Site) -> None:
    alice = await site.user("alice")
    file = await alice.uploaded(b"<script>alert(1)</script>", "page.html", "text/html")
    assert file["mime"] == "text/html"
    _, headers, _ = await alice.download(file)
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in headers["Content-Security-Policy"]


async def test_others_and_strangers_cannot_read(site: Site) -> None:
    alice, file = await _file(site)
    bob = await site.user("bob")
    for path in (f"/api/v1/files/{file['id']}", f"/api/v1/files/{file['id']}/content",
                 f"/api/v1/files/{file['id']}/thumbnail"):
        assert_error(await bob.call("GET", path), 404, "not_found")
        assert_error(await site.anonymous.call("GET", path), 401, "unauthorized")
    for bad in ("123456789", "abc", "²"):
        assert_error(await alice.call("GET", f"/api/v1/files/{bad}"), 404, "not_found")


async def test_signed_url_works_without_a_token(site: Site) -> None:
    alice, file = await _file(site)
    url = urlsplit(file["url"])
    assert url.path == f"/api/v1/files/{file['id']}/content"
    status, headers, body = await alice.raw("GET", f"{url.path}?{url.query}", auth=False)
    assert status == 200 and body == DATA
    status, _, body = await alice.raw("GET", f"{url.path}?{url.query}", auth=False, headers={"Range": "bytes=5-9"})
    assert status == 206 and body == DATA[5:10]


async def test_expired_and_forged_signatures_are_403(site: Site) -> None:
    alice, file = await _file(site)
    url = urlsplit(file["url"])
    query = parse_qs(url.query)
    exp, sig = query["exp"][0], query["sig"][0]
    path = url.path
    forged = [f"exp={exp}&sig={'0' * 64}", f"exp={int(exp) + 1}&sig={sig}", f"exp={exp}", f"sig={sig}",
              f"exp=soon&sig={sig}"]
    for q in forged:
        status, body = await site.anonymous.call("GET", f"{path}?{q}")
        assert_error((status, body), 403, "forbidden")
    # the content's signature does not open the thumbnail, nor another file
    assert (await site.anonymous.call("GET", f"/api/v1/files/{file['id']}/thumbnail?{url.query}"))[0] == 403
    other = await alice.uploaded(b"other", "other.bin")
    assert (await site.anonymous.call("GET", f"/api/v1/files/{other['id']}/content?{url.query}"))[0] == 403
    # a client that also sends its token is served by the token
    status, _, body = await alice.raw("GET", f"{path}?exp={exp}&sig={'0' * 64}")
    assert status == 200 and body == DATA
    # still good just before it expires, expired at its time
    site.clock.advance((int(exp) - site.clock.now_ms()) / 1000 - 1)
    assert (await alice.raw("GET", f"{path}?{url.query}", auth=False))[0] == 200
    site.clock.advance(1)
    error = assert_error(await site.anonymous.call("GET", f"{path}?{url.query}"), 403, "forbidden")
    assert "expired" in error["message"]


async def test_single_upload_over_the_limit_is_413(make_site: MakeSite) -> None:
    site = await make_site(files={"max_single_mb": 1})
    alice = await site.user("alice")
    assert_error(await alice.upload(os.urandom(1024 * 1024 + 1)), 413, "payload_too_large")
    assert (await alice.upload(os.urandom(1024 * 1024)))[0] == 201
    # nothing of the refused upload was kept
    stats = await site.files.stats()
    assert stats.files == 1 and sum(n for n, _ in stats.blobs_by_backend.values()) == 1


async def test_quota_is_413(make_site: MakeSite) -> None:
    site = await make_site(files={"quota_mb": 1})
    alice = await site.user("alice")
    assert (await alice.upload(os.urandom(700 * 1024)))[0] == 201
    error = assert_error(await alice.upload(os.urandom(400 * 1024)), 413, "payload_too_large")
    assert "quota" in error["message"]
    bob = await site.user("bob")  # a quota is per user
    assert (await bob.upload(os.urandom(700 * 1024)))[0] == 201


async def test_a_form_without_a_file_field_is_422(site: Site) -> None:
    alice = await site.user("alice")
    assert_error(await alice.upload(b"abc", field_name="attachment"), 422, "validation_failed", "file")
    assert_error(await alice.upload(b"abc", name=""), 422, "validation_failed", "file")


async def test_same_content_is_stored_once(site: Site) -> None:
    alice, bob = await site.user("alice"), await site.user("bob")
    data = os.urandom(300_000)
    a = await alice.uploaded(data, "a.bin")
    b = await bob.uploaded(data, "b.bin")
    assert a["id"] != b["id"] and a["md5"] == b["md5"]
    stats = await site.files.stats()
    assert stats.files == 2 and stats.file_bytes == 2 * len(data)
    assert list(stats.blobs_by_backend.values()) == [(1, len(data))]
    assert (await bob.download(b))[2] == data


async def test_presign_redirects_to_s3_and_local_files_are_served_as_before(make_site: MakeSite, storage: str) -> None:
    # `files.s3_presign` sends S3 downloads straight to the S3 server; a local folder has no
    # such URL, so the server keeps answering with the bytes itself.
    site = await make_site(files={"s3_presign": True})
    alice, file = await _file(site)
    status, headers, body = await alice.download(file)
    if storage != "s3":
        assert (status, body) == (200, DATA)
        assert "Location" not in headers
        return
    assert status == 302
    location = headers["Location"]
    assert "X-Amz-Signature=" in location and "response-content-disposition=" in location
    async with site.client.session.get(location) as resp:  # straight to the S3 server
        assert resp.status == 200
        assert await resp.read() == DATA
    # a cached copy is still answered by the server
    assert (await alice.download(file, {"If-None-Match": f'"{file["md5"]}"'}))[0] == 304
