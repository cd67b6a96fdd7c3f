"""GET /api/v1/releases/check: what a caller is offered, and the cache behind it."""

from __future__ import annotations

import pytest

from ..http.conftest import assert_error
from .conftest import Publisher


async def test_nothing_published_answers_latest_null(admin: Publisher, backend: str, storage: str) -> None:
    assert await admin.check(platform="android", version="1.0.0") == {"update": False, "force": False, "latest": None}


async def test_a_newer_release_is_an_update_with_the_contract_fields(admin: Publisher, backend: str,
                                                                     storage: str) -> None:
    release = await admin.release("android", "1.10.0", b"apk bytes", notes="Faster sync")
    answer = await admin.check(platform="android", version="1.9.0")
    assert (answer["update"], answer["force"]) == (True, False)
    latest = answer["latest"]
    assert set(latest) == {"version", "notes", "size", "sha256", "download_url", "published_at"}
    assert (latest["version"], latest["notes"], latest["size"], latest["sha256"]) == (
        "1.10.0", "Faster sync", len(b"apk bytes"), release["sha256"])
    assert latest["published_at"] == admin.site.clock.now_ms()
    # the same version, or a newer one, is no update; latest still says what is out
    for version in ("1.10.0", "1.10.0+build.7", "2.0.0", "1.10.1-beta.1"):
        answer = await admin.check(platform="android", version=version)
        assert (answer["update"], answer["latest"]["version"]) == (False, "1.10.0"), version
    # a pre-release of that version is below it
    assert (await admin.check(platform="android", version="1.10.0-rc.2"))["update"] is True
    # other platforms see nothing
    assert (await admin.check(platform="ios", version="1.0.0"))["latest"] is None


async def test_below_the_minimum_supported_version_the_update_is_forced(admin: Publisher, backend: str,
                                                                        storage: str) -> None:
    await admin.release("ios", "3.0.0", min_version="2.5.0")
    for version, force in (("2.4.9", True), ("2.5.0-rc.1", True), ("2.5.0", False), ("2.9.0", False)):
        answer = await admin.check(platform="ios", version=version)
        assert (answer["update"], answer["force"]) == (True, force), version


async def test_drafts_and_yanked_releases_are_never_offered(admin: Publisher, backend: str, storage: str) -> None:
    await admin.release("web", "1.0.0")
    draft = await admin.release("web", "1.1.0", publish=False)
    assert draft["state"] == "draft" and draft["published_at"] is None
    assert (await admin.check(platform="web", version="1.0.0"))["update"] is False
    status, body = await admin.api.call("POST", f"/api/v1/admin/releases/{draft['id']}/publish")
    assert (status, body["state"]) == (200, "published")
    assert (await admin.check(platform="web", version="1.0.0"))["latest"]["version"] == "1.1.0"
    status, body = await admin.api.call("POST", f"/api/v1/admin/releases/{draft['id']}/yank")
    assert (status, body["state"]) == (200, "yanked")
    answer = await admin.check(platform="web", version="1.0.0")
    assert (answer["update"], answer["latest"]["version"]) == (False, "1.0.0")


async def test_the_beta_channel_also_sees_stable_releases(admin: Publisher, backend: str, storage: str) -> None:
    await admin.release("android", "2.0.0-beta.3", channel="beta")
    await admin.release("android", "1.9.0")
    assert (await admin.check(platform="android", version="1.8.0"))["latest"]["version"] == "1.9.0"
    beta = await admin.check(platform="android", version="1.8.0", channel="beta")
    assert beta["latest"]["version"] == "2.0.0-beta.3"
    await admin.release("android", "2.0.0")
    assert (await admin.check(platform="android", version="2.0.0-beta.3", channel="beta"))["latest"]["version"] == "2.0.0"


async def test_a_package_for_one_arch_goes_only_to_callers_of_that_arch(admin: Publisher, backend: str,
                                                                        storage: str) -> None:
    await admin.release("windows", "1.0.0")
    await admin.release("windows", "1.1.0", arch="aarch64")
    assert (await admin.check(platform="windows", version="1.0.0"))["update"] is False
    assert (await admin.check(platform="windows", version="1.0.0", arch="x86_64"))["update"] is False
    assert (await admin.check(platform="windows", version="1.0.0", arch="aarch64"))["latest"]["version"] == "1.1.0"


async def test_a_staged_rollout_reaches_about_its_share_of_devices_and_each_device_stays_put(
        admin: Publisher, backend: str, storage: str) -> None:
    await admin.release("linux", "1.0.0")
    staged = await admin.release("linux", "1.1.0", rollout=30)
    answers = {}
    for n in range(600):
        answer = await admin.check(platform="linux", version="1.0.0", device_id=f"device-{n}")
        answers[n] = answer["latest"]["version"]
        assert answer["update"] is (answers[n] == "1.1.0")
    share = sum(v == "1.1.0" for v in answers.values()) / len(answers)
    assert 0.22 < share < 0.38, share
    for n in range(0, 600, 50):  # one device's answer does not change between calls
        again = await admin.check(platform="linux", version="1.0.0", device_id=f"device-{n}")
        assert again["latest"]["version"] == answers[n]
    # without a device id only a release out to everyone is offered
    assert (await admin.check(platform="linux", version="1.0.0"))["latest"]["version"] == "1.0.0"
    # widening the rollout keeps everyone who had it and reaches everyone at 100
    status, _ = await admin.api.call("PATCH", f"/api/v1/admin/releases/{staged['id']}", {"rollout": 60})
    assert status == 200
    for n, version in answers.items():
        if version == "1.1.0":
            assert (await admin.check(platform="linux", version="1.0.0", device_id=f"device-{n}"))["update"]
    await admin.api.call("PATCH", f"/api/v1/admin/releases/{staged['id']}", {"rollout": 100})
    assert (await admin.check(platform="linux", version="1.0.0"))["latest"]["version"] == "1.1.0"
    await admin.api.call("PATCH", f"/api/v1/admin/releases/{staged['id']}", {"rollout": 0})
    for n in range(50):
        answer = await admin.check(platform="linux", version="1.0.0", device_id=f"device-{n}")
        assert answer["latest"]["version"] == "1.0.0"


async def test_a_cached_check_reads_nothing_and_publish_and_yank_refresh_it(admin: Publisher, backend: str,
                                                                           storage: str) -> None:
    offers = admin.site.core.releases.offers
    await admin.release("android", "1.0.0")
    await admin.check(platform="android", version="0.9.0")
    loads = offers.loads
    for _ in range(20):
        await admin.check(platform="android", version="0.9.0", device_id="x")
    assert offers.loads == loads  # served from memory
    newer = await admin.release("android", "1.1.0", publish=False)
    assert (await admin.check(platform="android", version="0.9.0"))["latest"]["version"] == "1.0.0"
    await admin.api.call("POST", f"/api/v1/admin/releases/{newer['id']}/publish")
    assert (await admin.check(platform="android", version="0.9.0"))["latest"]["version"] == "1.1.0"
    await admin.api.call("POST", f"/api/v1/admin/releases/{newer['id']}/yank")
    assert (await admin.check(platform="android", version="0.9.0"))["latest"]["version"] == "1.0.0"


async def test_a_change_by_another_process_is_seen_at_the_next_poll(admin: Publisher, backend: str,
                                                                    storage: str) -> None:
    core = admin.site.core
    await admin.release("android", "1.0.0")
    await core.releases.offers.refresh_if_changed()  # the server's first look
    assert (await admin.check(platform="android", version="0.9.0"))["latest"]["version"] == "1.0.0"
    # the CLI's service: another ReleaseService over the same database and files
    from lucky_server.bus import LocalBus
    from lucky_server.chat.delivery import Sessions
    from lucky_server.releases.service import ReleaseService

    # its own bus: a process that cannot tell the server (the poll is what sees its change)
    elsewhere = ReleaseService(core.db, core.files, core.config.releases, core.clock, core.ids,
                               core.keyring.url_signing_key, core.config.public_url, LocalBus(Sessions()))
    (latest,) = await elsewhere.of_version("android", "1.0.0")
    await elsewhere.yank(None, latest.id)
    assert (await admin.check(platform="android", version="0.9.0"))["latest"]["version"] == "1.0.0"  # cached
    assert await core.releases.offers.refresh_if_changed() is True
    assert (await admin.check(platform="android", version="0.9.0"))["latest"] is None
    assert await core.releases.offers.refresh_if_changed() is False


@pytest.mark.parametrize("query, field", [
    ("platform=android", "version"),
    ("platform=android&version=", "version"),
    ("platform=android&version=1.0", "version"),
    ("platform=android&version=latest", "version"),
    ("version=1.0.0", "platform"),
    ("platform=symbian&version=1.0.0", "platform"),
    ("platform=android&version=1.0.0&channel=nightly", "channel"),
    ("platform=windows&version=1.0.0&arch=sparc", "arch"),
])
async def test_bad_queries_are_422_naming_the_parameter(admin: Publisher, backend: str, storage: str, query: str,
                                                        field: str) -> None:
    assert_error(await admin.site.anonymous.call("GET", f"/api/v1/releases/check?{query}"), 422,
                 "validation_failed", field)
