"""QR sign-in over HTTP against the real server, on SQLite and PostgreSQL: a browser creates a
session and polls it; a signed-in phone (Bob) scans and confirms; the browser gets its own
token set, for a new device of Bob's, exactly once."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any
from urllib.parse import quote

import segno
from PIL import Image

from lucky_server.clock import FakeClock

from ..conftest import Api
from ..http.conftest import MakeApi, assert_error, register, signed_in


async def _create(api: Api, **body: Any) -> dict[str, Any]:
    status, created = await api.call("POST", "/api/v1/auth/qr", body or None,
                                     headers={"User-Agent": "Firefox on Linux"})
    assert status == 201, created
    assert set(created) == {"qr_id", "poll_token", "payload", "expires_in"}
    return dict(created)


async def _poll(api: Api, created: dict[str, Any], wait: int = 0) -> tuple[int, Any]:
    return await api.call("GET", f"/api/v1/auth/qr/{created['qr_id']}?poll_token={created['poll_token']}&wait={wait}")


def _modules(png: bytes, scale: int = 8, border: int = 4) -> list[list[bool]]:
    """The dark modules of a QR code image: the centre pixel of each module."""
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    gray = image.convert("L")
    size = gray.width // scale - 2 * border
    assert gray.width == gray.height == (size + 2 * border) * scale
    return [[gray.getpixel(((x + border) * scale + scale // 2, (y + border) * scale + scale // 2)) < 128
             for x in range(size)] for y in range(size)]


async def test_a_browser_signs_in_by_qr_as_a_new_device_of_the_phone_user(api: Api, backend: str) -> None:
    bob_set = await register(api, "bob", display_name="Bob B")
    bob = signed_in(api, bob_set)
    browser = await _create(api, device={"name": "Office PC", "platform": "web"})
    assert browser["expires_in"] == 120
    assert browser["payload"] == (f"lucky://qr/{browser['qr_id']}?s="
                                  f"{quote(api.core.config.public_url, safe='')}")
    assert browser["poll_token"] not in browser["payload"]

    # The PNG is a real PNG holding exactly the QR code of the payload.
    async with api.client.get(f"/api/v1/auth/qr/{browser['qr_id']}.png") as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert resp.headers["Cache-Control"] == "no-store"
        png = await resp.read()
    expected = [[bool(v) for v in row] for row in segno.make(browser["payload"], error="m").matrix]
    assert _modules(png) == expected

    assert await _poll(api, browser) == (200, {"state": "pending"})
    assert await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/scan") == (204, "")
    assert await _poll(api, browser) == (200, {"state": "scanned", "scanned_by": bob_set["user"]})
    assert await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/confirm") == (204, "")

    status, first = await _poll(api, browser)
    assert status == 200 and first["state"] == "confirmed" and first["scanned_by"] == bob_set["user"]
    assert first["user"] == bob_set["user"] and first["expires_in"] == 900
    assert first["access_token"] and first["refresh_token"]
    # Once only: later polls see the state, never the tokens again.
    assert await _poll(api, browser) == (200, {"state": "confirmed", "scanned_by": bob_set["user"]})
    assert await _poll(api, browser, wait=5) == (200, {"state": "confirmed", "scanned_by": bob_set["user"]})
    # The PNG of a finished session is gone.
    async with api.client.get(f"/api/v1/auth/qr/{browser['qr_id']}.png") as resp:
        assert resp.status == 410

    # The browser's tokens are Bob's, on a device of their own (not the phone's session).
    browser_api = signed_in(api, first)
    assert await browser_api.call("GET", "/api/v1/me") == (200, bob_set["user"])
    async with api.client.ws_connect(f"/ws?token={first['access_token']}") as ws:
        welcome = await ws.receive_json(timeout=10)
    async with api.client.ws_connect(f"/ws?token={bob_set['access_token']}") as ws:
        phone_welcome = await ws.receive_json(timeout=10)
    assert welcome["type"] == "welcome" and welcome["user_id"] == bob_set["user"]["id"]
    assert welcome["device_id"] != phone_welcome["device_id"]
    status, devices = await bob.call("GET", "/api/v1/me/devices")
    assert status == 200
    named = {d["id"]: d for d in devices["items"]}
    assert named[welcome["device_id"]]["name"] == "Office PC"
    assert named[welcome["device_id"]]["platform"] == "web"
    # Its refresh token works, and the phone's session is untouched by the browser's logout.
    status, rotated = await api.call("POST", "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 200 and rotated["user"] == bob_set["user"]
    assert await signed_in(api, rotated).call("POST", "/api/v1/auth/logout") == (204, "")
    assert (await bob.call("GET", "/api/v1/me"))[0] == 200


async def test_the_device_is_named_after_the_browser_without_a_body(api: Api, backend: str) -> None:
    bob_set = await register(api, "bob")
    bob = signed_in(api, bob_set)
    browser = await _create(api)
    await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/scan")
    await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/confirm")
    _, tokens = await _poll(api, browser)
    async with api.client.ws_connect(f"/ws?token={tokens['access_token']}") as ws:
        device_id = (await ws.receive_json(timeout=10))["device_id"]
    _, devices = await bob.call("GET", "/api/v1/me/devices")
    assert {d["id"]: d["name"] for d in devices["items"]}[device_id] == "Firefox on Linux"


async def test_a_long_poll_wakes_on_the_scan_and_on_the_confirm(make_api: MakeApi, backend: str) -> None:
    # No periodic re-read within the test: only the wake-up can answer before the wait ends.
    api = await make_api(auth={"qr_reread_s": 60})
    bob_set = await register(api, "bob")
    bob = signed_in(api, bob_set)
    browser = await _create(api)
    qr = api.core.qr

    async def when_waiting() -> None:
        # The poll is parked (not a timing guess: the service counts its waiters).
        for _ in range(500):
            if qr.waiting() == 1:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the long-poll never started waiting")

    started = time.monotonic()
    poll = asyncio.create_task(_poll(api, browser, wait=20))
    await when_waiting()
    assert await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/scan") == (204, "")
    assert await poll == (200, {"state": "scanned", "scanned_by": bob_set["user"]})

    poll = asyncio.create_task(_poll(api, browser, wait=20))
    await when_waiting()
    assert await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/confirm") == (204, "")
    status, answer = await poll
    assert status == 200 and answer["state"] == "confirmed" and answer["access_token"]
    # Both answers came with the change, far before the 20 s wait ran out.
    assert time.monotonic() - started < 5
    assert qr.waiting() == 0


async def test_a_long_poll_sees_a_change_made_by_another_node(api: Api, backend: str) -> None:
    """A scan written to the database by another process (no local wake-up) is seen by the
    long-poll's periodic re-read, well before its wait runs out."""
    bob_set = await register(api, "bob")
    browser = await _create(api)
    started = time.monotonic()
    poll = asyncio.create_task(_poll(api, browser, wait=20))
    for _ in range(500):
        if api.core.qr.waiting() == 1:
            break
        await asyncio.sleep(0.01)
    await api.core.db.execute("test_other_node", "UPDATE qr_sessions SET state = 'scanned', scanned_by = ? "
                              "WHERE id = ?", (int(bob_set["user"]["id"]), browser["qr_id"]))
    assert await poll == (200, {"state": "scanned", "scanned_by": bob_set["user"]})
    assert time.monotonic() - started < 5


async def test_two_polls_at_once_after_the_confirm_get_the_tokens_once_between_them(api: Api, backend: str) -> None:
    bob = signed_in(api, await register(api, "bob"))
    for _ in range(3):
        browser = await _create(api)
        await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/scan")
        await bob.call("POST", f"/api/v1/auth/qr/{browser['qr_id']}/confirm")
        answers = await asyncio.gather(*(_poll(api, browser) for _ in range(4)))
        assert all(status == 200 and body["state"] == "confirmed" for status, body in answers)
        assert sum("access_token" in body for _, body in answers) == 1, answers


async def test_the_poll_token_is_required(api: Api, backend: str) -> None:
    browser = await _create(api)
    other = await _create(api)
    base = f"/api/v1/auth/qr/{browser['qr_id']}"
    assert_error(await api.call("GET", base), 401, "unauthorized")
    assert_error(await api.call("GET", base + "?poll_token="), 401, "unauthorized")
    assert_error(await api.call("GET", f"{base}?poll_token={other['poll_token']}"), 401, "unauthorized")
    # A bearer token of a user is not the poll token either.
    bob = await api.register("bob")
    assert_error(await bob.call("GET", base), 401, "unauthorized")
    assert_error(await api.call("GET", f"/api/v1/auth/qr/nope?poll_token={browser['poll_token']}"), 404, "not_found")
    assert_error(await api.call("GET", "/api/v1/auth/qr/nope.png"), 404, "not_found")
    assert_error(await bob.call("POST", "/api/v1/auth/qr/nope/scan"), 404, "not_found")
    # ids no session can have (a NUL, which PostgreSQL cannot even compare) are unknown too
    for odd in ("a%00b", "a.b", "x" * 65):
        assert_error(await api.call("GET", f"/api/v1/auth/qr/{odd}?poll_token=x"), 404, "not_found")
        assert_error(await api.call("GET", f"/api/v1/auth/qr/{odd}.png"), 404, "not_found")
        assert_error(await bob.call("POST", f"/api/v1/auth/qr/{odd}/scan"), 404, "not_found")
    assert_error(await api.call("GET", f"{base}?poll_token={browser['poll_token']}&wait=31"), 422,
                 "validation_failed", "wait")
    assert_error(await api.call("GET", f"{base}?poll_token={browser['poll_token']}&wait=-1"), 422,
                 "validation_failed", "wait")
    # scan, confirm and cancel need a signed-in device
    for action in ("scan", "confirm", "cancel"):
        assert_error(await api.call("POST", f"{base}/{action}"), 401, "unauthorized")
    assert await _poll(api, browser) == (200, {"state": "pending"})


async def test_only_the_user_who_scanned_confirms_or_cancels(api: Api, backend: str) -> None:
    bob = signed_in(api, await register(api, "bob"))
    eve = signed_in(api, await register(api, "eve"))
    browser = await _create(api)
    base = f"/api/v1/auth/qr/{browser['qr_id']}"
    # nothing to confirm or cancel before a scan
    assert_error(await bob.call("POST", f"{base}/confirm"), 409, "conflict")
    assert_error(await bob.call("POST", f"{base}/cancel"), 409, "conflict")
    assert await bob.call("POST", f"{base}/scan") == (204, "")
    assert await bob.call("POST", f"{base}/scan") == (204, "")  # a retry of the same scan
    assert_error(await eve.call("POST", f"{base}/scan"), 409, "conflict")
    assert_error(await eve.call("POST", f"{base}/confirm"), 403, "forbidden")
    assert_error(await eve.call("POST", f"{base}/cancel"), 403, "forbidden")
    assert (await _poll(api, browser))[1]["state"] == "scanned"
    assert await bob.call("POST", f"{base}/cancel") == (204, "")
    assert await _poll(api, browser) == (200, {"state": "cancelled", "scanned_by": bob.user})
    assert_error(await bob.call("POST", f"{base}/confirm"), 409, "conflict")
    assert await _poll(api, browser, wait=5) == (200, {"state": "cancelled", "scanned_by": bob.user})


async def test_a_session_expires(make_api: MakeApi, clock: FakeClock, backend: str) -> None:
    api = await make_api(auth={"qr_ttl_s": 30})
    bob = signed_in(api, await register(api, "bob"))
    browser = await _create(api)
    assert browser["expires_in"] == 30
    base = f"/api/v1/auth/qr/{browser['qr_id']}"
    assert await bob.call("POST", f"{base}/scan") == (204, "")
    clock.advance(30)
    assert (await _poll(api, browser))[1]["state"] == "expired"
    assert_error(await bob.call("POST", f"{base}/confirm"), 410, "gone")
    async with api.client.get(f"{base}.png") as resp:
        assert resp.status == 410

    # Confirmed but never taken by the browser before the expiry: expired, no tokens ever.
    late = await _create(api)
    await bob.call("POST", f"/api/v1/auth/qr/{late['qr_id']}/scan")
    await bob.call("POST", f"/api/v1/auth/qr/{late['qr_id']}/confirm")
    clock.advance(31)
    assert (await _poll(api, late)) == (200, {"state": "expired", "scanned_by": bob.user})

    # The clean-up job removes them an hour later; then they are unknown.
    assert await api.core.qr.cleanup() == 0
    clock.advance(3600)
    assert await api.core.qr.cleanup() == 2
    assert_error(await _poll(api, browser), 404, "not_found")


async def test_creating_sessions_counts_against_the_ip_limit(make_api: MakeApi, backend: str) -> None:
    api = await make_api(auth={"ip_rate_per_min": 3})
    for _ in range(3):
        await _create(api)
    status, body = await api.call("POST", "/api/v1/auth/qr")
    assert status == 429 and body["error"]["code"] == "rate_limited"


async def test_a_bad_device_body_is_refused(api: Api, backend: str) -> None:
    assert_error(await api.call("POST", "/api/v1/auth/qr", {"device": {"name": "x" * 129}}), 422,
                 "validation_failed", "device.name")
    assert_error(await api.call("POST", "/api/v1/auth/qr", {"device": {"name": "a\u0000b"}}), 422,
                 "validation_failed", "device.name")
    assert_error(await api.call("POST", "/api/v1/auth/qr", {"device": 5}), 422, "validation_failed", "device")


async def test_a_shutdown_answers_waiting_long_polls_at_once(make_api: MakeApi, backend: str) -> None:
    api = await make_api(auth={"qr_reread_s": 60})  # only the stop can end the wait early
    browser = await _create(api)
    started = time.monotonic()
    poll = asyncio.create_task(_poll(api, browser, wait=20))
    for _ in range(500):
        if api.core.qr.waiting() == 1:
            break
        await asyncio.sleep(0.01)
    api.core.qr.stop_waiting()  # what the server's on_shutdown does
    assert await poll == (200, {"state": "pending"})
    assert time.monotonic() - started < 5
