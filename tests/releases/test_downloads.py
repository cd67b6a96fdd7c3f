"""A release's download URL: no token needed, refused when altered or expired, the exact bytes."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlsplit

from multidict import CIMultiDict

from ..files.conftest import Site
from ..http.conftest import assert_error
from .conftest import Publisher

PACKAGE = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk of the blob store


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _get(site: Site, path: str, headers: dict[str, str] | None = None) -> tuple[int, CIMultiDict[str], bytes]:
    async with site.client.get(path, headers=headers or {}) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def test_the_download_url_gives_the_bytes_without_a_token(admin: Publisher, backend: str,
                                                               storage: str) -> None:
    release = await admin.release("android", "1.0.0", PACKAGE, file_name="lucky-1.0.0.apk")
    assert release["size"] == len(PACKAGE) and release["sha256"] == hashlib.sha256(PACKAGE).hexdigest()
    url = (await admin.check(platform="android", version="0.1.0"))["latest"]["download_url"]
    assert url.startswith(admin.site.core.config.public_url + f"/api/v1/releases/{release['id']}/download?exp=")
    status, headers, body = await _get(admin.site, _path(url))
    assert status == 200
    assert body == PACKAGE and hashlib.sha256(body).hexdigest() == release["sha256"]
    assert headers["ETag"] == f'"{release["sha256"]}"'
    assert headers["Content-Type"] == "application/octet-stream"
    assert 'attachment; filename="lucky-1.0.0.apk"' in headers["Content-Disposition"]
    # resuming: a range, and a matching ETag is 304
    status, headers, body = await _get(admin.site, _path(url), {"Range": "bytes=1048570-1048580"})
    assert (status, body) == (206, PACKAGE[1048570:1048581])
    assert headers["Content-Range"] == f"bytes 1048570-1048580/{len(PACKAGE)}"
    status, _, body = await _get(admin.site, _path(url), {"If-None-Match": f'"{release["sha256"]}"'})
    assert (status, body) == (304, b"")
    status, headers, _ = await _get(admin.site, _path(url), {"Range": f"bytes={len(PACKAGE)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(PACKAGE)}"


async def test_an_altered_or_expired_url_is_refused(admin: Publisher, backend: str, storage: str) -> None:
    first = await admin.release("android", "1.0.0", b"first")
    second = await admin.release("ios", "1.0.0", b"second")
    url = _path(first["download_url"])
    for bad in (url.replace(first["id"], second["id"]),  # another release under the same signature
                url[:-4] + ("0000" if not url.endswith("0000") else "1111"),  # the signature
                url.replace("exp=", "exp=9"),  # a later expiry
                url.split("?")[0], url.split("&sig")[0]):
        assert_error(await admin.site.anonymous.call("GET", bad), 403, "forbidden")
    # a file's signed URL for the same id opens no release: what is signed differs
    query = admin.site.files.signer.query(int(first["id"]), "content", admin.site.clock.now_ms())
    assert_error(await admin.site.anonymous.call("GET", f"/api/v1/releases/{first['id']}/download?{query}"),
                 403, "forbidden")
    status, _, body = await _get(admin.site, url)
    assert (status, body) == (200, b"first")
    admin.site.clock.advance(2 * admin.site.core.config.releases.url_ttl_s + 1)
    error = assert_error(await admin.site.anonymous.call("GET", url), 403, "forbidden")
    assert "expired" in error["message"]
    fresh = (await admin.check(platform="android", version="0.1.0"))["latest"]["download_url"]
    assert (await _get(admin.site, _path(fresh)))[2] == b"first"


async def test_a_yanked_release_cannot_be_downloaded(admin: Publisher, backend: str, storage: str) -> None:
    release = await admin.release("android", "1.0.0", b"bad build")
    await admin.api.call("POST", f"/api/v1/admin/releases/{release['id']}/yank")
    assert_error(await admin.site.anonymous.call("GET", _path(release["download_url"])), 410, "gone")


async def test_the_same_package_twice_is_stored_once(admin: Publisher, backend: str, storage: str) -> None:
    stable = await admin.release("android", "1.0.0", PACKAGE)
    beta = await admin.release("android", "1.0.0", PACKAGE, channel="beta")
    stats = await admin.site.files.stats()
    assert sum(count for count, _ in stats.blobs_by_backend.values()) == 1
    for release in (stable, beta):
        assert (await _get(admin.site, _path(release["download_url"])))[2] == PACKAGE
