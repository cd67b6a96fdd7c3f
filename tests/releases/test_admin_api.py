"""The admin API that publishes releases: who may call it, bad input, changes and the audit log."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from ..conftest import Api
from ..http.conftest import assert_error
from .conftest import Publisher

ROUTES = [("POST", "/api/v1/admin/releases"), ("GET", "/api/v1/admin/releases"),
          ("GET", "/api/v1/admin/releases/1"), ("POST", "/api/v1/admin/releases/1/publish"),
          ("POST", "/api/v1/admin/releases/1/yank"), ("PATCH", "/api/v1/admin/releases/1")]


async def test_only_admins_may_publish(admin: Publisher, backend: str, storage: str) -> None:
    alice = await Api(admin.site.client).register("alice")
    for method, path in ROUTES:
        assert_error(await admin.site.anonymous.call(method, path), 401, "unauthorized")
        assert_error(await alice.call(method, path), 403, "forbidden")
    assert (await admin.site.core.releases.page(10))[0] == []


@pytest.mark.parametrize("fields, field", [
    ({"platform": "symbian"}, "platform"),
    ({"platform": ""}, "platform"),
    ({"version": "1.0"}, "version"),
    ({"version": ""}, "version"),
    ({"channel": "nightly"}, "channel"),
    ({"min_version": "2.0.0"}, "min_version"),  # above the release's version
    ({"min_version": "two"}, "min_version"),
    ({"rollout": "101"}, "rollout"),
    ({"rollout": "-1"}, "rollout"),
    ({"arch": "x86_64"}, "arch"),  # android has no arch
    ({"publish": "maybe"}, "publish"),
])
async def test_bad_fields_are_422_and_store_nothing(admin: Publisher, backend: str, storage: str,
                                                    fields: dict[str, str], field: str) -> None:
    base = {"platform": "android", "version": "1.0.0", **fields}
    platform, version = base.pop("platform"), base.pop("version")
    assert_error(await admin.create(platform, version, **base), 422, "validation_failed", field)
    assert (await admin.site.core.releases.page(10))[0] == []
    assert (await admin.site.files.stats()).blobs_by_backend == {}


async def test_no_file_an_empty_one_or_a_json_body_are_refused(admin: Publisher, backend: str, storage: str) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("platform", "android")
    form.add_field("version", "1.0.0")
    assert_error(await admin.api.call("POST", "/api/v1/admin/releases", data=form), 422, "validation_failed", "file")
    assert_error(await admin.create("android", "1.0.0", b""), 422, "validation_failed", "file")
    assert_error(await admin.api.call("POST", "/api/v1/admin/releases", {"platform": "android"}), 415,
                 "unsupported_media_type")
    assert (await admin.site.core.releases.page(10))[0] == []


async def test_a_version_is_never_reused(admin: Publisher, backend: str, storage: str) -> None:
    first = await admin.release("android", "1.0.0")
    assert_error(await admin.create("android", "1.0.0+build.2"), 409, "conflict")
    await admin.api.call("POST", f"/api/v1/admin/releases/{first['id']}/yank")
    assert_error(await admin.create("android", "1.0.0"), 409, "conflict")
    # another channel, platform or arch may have it
    await admin.release("android", "1.0.0", channel="beta")
    await admin.release("windows", "1.0.0", arch="x86_64")
    await admin.release("windows", "1.0.0", arch="aarch64")
    status, body = await admin.api.call("POST", f"/api/v1/admin/releases/{first['id']}/publish")
    assert_error((status, body), 409, "conflict")


async def test_patch_changes_notes_rollout_and_min_version(admin: Publisher, backend: str, storage: str) -> None:
    release = await admin.release("android", "2.0.0", notes="old")
    path = f"/api/v1/admin/releases/{release['id']}"
    status, body = await admin.api.call("PATCH", path, {"notes": "new", "rollout": 40, "min_version": "1.5.0"})
    assert status == 200, body
    assert (body["notes"], body["rollout"], body["min_version"]) == ("new", 40, "1.5.0")
    status, body = await admin.api.call("PATCH", path, {"min_version": ""})
    assert (status, body["min_version"], body["rollout"]) == (200, None, 40)
    assert_error(await admin.api.call("PATCH", path, {"rollout": 150}), 422, "validation_failed", "rollout")
    assert_error(await admin.api.call("PATCH", path, {"rollout": "ten"}), 422, "validation_failed", "rollout")
    assert_error(await admin.api.call("PATCH", path, {"min_version": "3.0.0"}), 422, "validation_failed",
                 "min_version")
    assert_error(await admin.api.call("PATCH", "/api/v1/admin/releases/12345", {"notes": "x"}), 404, "not_found")
    status, body = await admin.api.call("GET", path)
    assert (status, body["notes"], body["rollout"]) == (200, "new", 40)


async def test_the_list_pages_newest_first_and_filters(admin: Publisher, backend: str, storage: str) -> None:
    made = [await admin.release("android", f"1.{n}.0") for n in range(5)]
    await admin.release("ios", "1.0.0")
    seen: list[str] = []
    cursor = None
    while True:
        query = "platform=android&limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body = await admin.api.call("GET", f"/api/v1/admin/releases?{query}")
        assert status == 200, body
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in reversed(made)]
    assert_error(await admin.api.call("GET", "/api/v1/admin/releases?platform=palm"), 422, "validation_failed",
                 "platform")
    assert_error(await admin.api.call("GET", "/api/v1/admin/releases?cursor=zzz"), 400, "invalid_request", "cursor")


async def test_every_change_is_in_the_audit_log(admin: Publisher, backend: str, storage: str) -> None:
    release = await admin.release("android", "1.0.0", publish=False)
    await admin.api.call("POST", f"/api/v1/admin/releases/{release['id']}/publish")
    await admin.api.call("PATCH", f"/api/v1/admin/releases/{release['id']}", {"rollout": 10})
    await admin.api.call("POST", f"/api/v1/admin/releases/{release['id']}/yank")
    rows = await admin.site.core.db.fetch_all(
        "SELECT actor_id, action, target, details FROM audit_log WHERE action LIKE 'release.%' ORDER BY id")
    assert [r["action"] for r in rows] == ["release.create", "release.publish", "release.update", "release.yank"]
    assert {int(r["actor_id"]) for r in rows} == {int(admin.api.user["id"])}
    assert {r["target"] for r in rows} == {release["id"]}
    assert orjson.loads(rows[2]["details"])["after"] == {"rollout": 10}
