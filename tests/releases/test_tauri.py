"""GET /api/v1/releases/tauri/{target}/{arch}/{current_version}, as Tauri's updater plugin
(v2) calls a dynamic update server: 204 No Content when there is no update, else 200 with
`version`, `notes`, `pub_date` (RFC 3339), `url` and `signature` (the .sig file's content)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from urllib.parse import urlsplit

import pytest

from ..http.conftest import assert_error
from .conftest import Publisher

SIGNATURE = ("dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHRhdXJpIHNlY3JldCBrZXkKUlVUeHh4eHh4eHh4eHh4eHh4eHh4eHh4"
             "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgKdHJ1"
             "c3RlZCBjb21tZW50OiB0aW1lc3RhbXA6MTcwMDAwMDAwMAlmaWxlOmx1Y2t5Lm1zaQp4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4")


async def _tauri(admin: Publisher, path: str) -> tuple[int, object]:
    return await admin.site.anonymous.call("GET", f"/api/v1/releases/tauri/{path}")


async def test_no_release_no_newer_release_and_an_unsigned_one_are_204(admin: Publisher, backend: str,
                                                                      storage: str) -> None:
    assert await _tauri(admin, "windows/x86_64/1.0.0") == (204, "")
    await admin.release("windows", "1.0.0", signature=SIGNATURE)
    assert await _tauri(admin, "windows/x86_64/1.0.0") == (204, "")  # the same version
    assert await _tauri(admin, "windows/x86_64/1.2.0") == (204, "")  # newer than the release
    await admin.release("windows", "1.1.0")  # no updater signature: Tauri could not install it
    assert await _tauri(admin, "windows/x86_64/1.0.0") == (204, "")
    await admin.release("windows", "1.2.0", signature=SIGNATURE, channel="beta")  # beta: not Tauri's channel
    assert await _tauri(admin, "windows/x86_64/1.0.0") == (204, "")


async def test_a_newer_signed_release_is_tauris_update_json(admin: Publisher, backend: str, storage: str) -> None:
    data = b"MSI package"
    await admin.release("windows", "1.1.0", data, notes="Fixes", signature=SIGNATURE + "\n", arch="x86_64",
                        file_name="lucky_1.1.0_x64_en-US.msi")
    status, body = await _tauri(admin, "windows/x86_64/1.0.0")
    assert status == 200, body
    assert isinstance(body, dict) and set(body) == {"version", "notes", "pub_date", "url", "signature"}
    assert (body["version"], body["notes"], body["signature"]) == ("1.1.0", "Fixes", SIGNATURE)
    # RFC 3339, in UTC
    published = datetime.fromisoformat(body["pub_date"].replace("Z", "+00:00"))
    assert body["pub_date"].endswith("Z") and "T" in body["pub_date"]
    assert int(published.timestamp() * 1000) == admin.site.clock.now_ms() // 1000 * 1000
    # the url downloads the package without a token
    url = urlsplit(body["url"])
    async with admin.site.client.get(f"{url.path}?{url.query}") as resp:
        assert resp.status == 200
        assert hashlib.sha256(await resp.read()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("target, arch, platform", [("darwin", "aarch64", "macos"), ("linux", "x86_64", "linux"),
                                                    ("windows", "i686", "windows"), ("linux", "armv7", "linux")])
async def test_targets_map_to_platforms_and_arch_specific_packages_go_to_their_arch(
        admin: Publisher, backend: str, storage: str, target: str, arch: str, platform: str) -> None:
    await admin.release(platform, "2.0.0", signature=SIGNATURE, arch=arch)
    assert (await _tauri(admin, f"{target}/{arch}/1.0.0"))[0] == 200
    other = "x86_64" if arch != "x86_64" else "aarch64"
    assert await _tauri(admin, f"{target}/{other}/1.0.0") == (204, "")
    assert await _tauri(admin, f"{target}/riscv64/1.0.0") == (204, "")  # no package can be built for it here
    await admin.release(platform, "2.1.0", signature=SIGNATURE)  # any arch
    status, body = await _tauri(admin, f"{target}/{other}/1.0.0")
    assert status == 200 and isinstance(body, dict) and body["version"] == "2.1.0"


async def test_the_update_follows_rollout_and_yank(admin: Publisher, backend: str, storage: str) -> None:
    staged = await admin.release("linux", "1.1.0", signature=SIGNATURE, rollout=0)
    assert await _tauri(admin, "linux/x86_64/1.0.0") == (204, "")
    await admin.api.call("PATCH", f"/api/v1/admin/releases/{staged['id']}", {"rollout": 100})
    assert (await _tauri(admin, "linux/x86_64/1.0.0"))[0] == 200
    await admin.api.call("POST", f"/api/v1/admin/releases/{staged['id']}/yank")
    assert await _tauri(admin, "linux/x86_64/1.0.0") == (204, "")


async def test_an_unknown_target_is_404_and_a_bad_version_422(admin: Publisher, backend: str, storage: str) -> None:
    assert_error(await _tauri(admin, "android/x86_64/1.0.0"), 404, "not_found")
    assert_error(await _tauri(admin, "macos/x86_64/1.0.0"), 404, "not_found")  # Tauri says darwin
    assert_error(await _tauri(admin, "linux/x86_64/1.0"), 422, "validation_failed", "current_version")
    # Tauri accepts a leading v
    await admin.release("linux", "1.1.0", signature=SIGNATURE)
    assert (await _tauri(admin, "linux/x86_64/v1.0.0"))[0] == 200
