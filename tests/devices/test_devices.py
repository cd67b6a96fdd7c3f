"""GET /api/v1/me/devices and DELETE /api/v1/me/devices/{id}, over HTTP and real WebSockets,
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType

from lucky_server.clock import FakeClock

from ..conftest import Api
from ..http.conftest import assert_error, login, register, signed_in

START = 1_800_000_000_000  # FakeClock's first instant


async def _sign_in(api: Api, username: str, device_id: str, name: str) -> dict[str, Any]:
    status, tokens = await login(api, username, device={"id": device_id, "name": name, "platform": "test"})
    assert status == 200, tokens
    return dict(tokens)


async def test_devices_list_and_sign_out_of_one(api: Api, clock: FakeClock, backend: str) -> None:
    await register(api, "bob")  # a third session (the registration's device), listed too
    phone_set = await _sign_in(api, "bob", "phone", "Bob's phone")
    clock.advance(60)
    laptop_set = await _sign_in(api, "bob", "laptop", "Bob's laptop")
    phone, laptop = signed_in(api, phone_set), signed_in(api, laptop_set)

    status, listed = await phone.call("GET", "/api/v1/me/devices")
    assert status == 200 and listed["next_cursor"] is None
    items = {d["id"]: d for d in listed["items"]}
    assert {"phone", "laptop"} <= set(items) and len(items) == 3
    assert listed["items"][0]["id"] == "laptop"  # most recently seen first
    assert items["phone"] == {"id": "phone", "name": "Bob's phone", "platform": "test", "created_at": START,
                              "last_seen_at": START, "ip": "127.0.0.1", "current": True}
    assert items["laptop"]["last_seen_at"] == START + 60_000 and not items["laptop"]["current"]

    # A socket connect and a refresh keep "last seen" fresh.
    clock.advance(60)
    async with api.client.ws_connect(f"/ws?token={phone_set['access_token']}") as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
    _, listed = await laptop.call("GET", "/api/v1/me/devices")
    assert {d["id"]: d for d in listed["items"]}["phone"]["last_seen_at"] == START + 120_000
    clock.advance(60)
    status, laptop_set2 = await api.call("POST", "/api/v1/auth/refresh", {"refresh_token": laptop_set["refresh_token"]})
    assert status == 200
    _, listed = await phone.call("GET", "/api/v1/me/devices")
    assert listed["items"][0]["id"] == "laptop" and listed["items"][0]["last_seen_at"] == START + 180_000

    # The phone signs the laptop out: its open socket is kicked, its tokens refused at once.
    laptop = signed_in(api, laptop_set2)
    async with api.client.ws_connect(f"/ws?token={laptop_set2['access_token']}") as laptop_ws, \
            api.client.ws_connect(f"/ws?token={phone_set['access_token']}") as phone_ws:
        assert (await laptop_ws.receive_json(timeout=10))["type"] == "welcome"
        assert (await phone_ws.receive_json(timeout=10))["type"] == "welcome"
        assert await phone.call("DELETE", "/api/v1/me/devices/laptop") == (204, "")
        assert await laptop_ws.receive_json(timeout=10) == {"type": "kick", "reason": "signed_out"}
        closed = await laptop_ws.receive(timeout=10)
        assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED) and laptop_ws.close_code == 4001
        # the phone's socket is untouched: it still answers
        await phone_ws.send_json({"type": "ping", "id": "p1"})
        assert await phone_ws.receive_json(timeout=10) == {"type": "pong", "id": "p1"}
    assert_error(await laptop.call("GET", "/api/v1/me"), 401, "unauthorized")
    assert_error(await api.call("POST", "/api/v1/auth/refresh", {"refresh_token": laptop_set2["refresh_token"]}),
                 401, "unauthorized")
    assert_error(await api.call("GET", f"/ws?token={laptop_set2['access_token']}"), 401, "unauthorized")
    assert (await phone.call("GET", "/api/v1/me"))[0] == 200
    _, listed = await phone.call("GET", "/api/v1/me/devices")
    assert "laptop" not in {d["id"] for d in listed["items"]} and len(listed["items"]) == 2
    # Signed out already: nothing to sign out.
    assert_error(await phone.call("DELETE", "/api/v1/me/devices/laptop"), 404, "not_found")
    # The sign-out is in the audit log, by Bob.
    row = await api.core.db.fetch_one("SELECT actor_id, target, details FROM audit_log WHERE action = 'device.sign_out'")
    assert row is not None and str(row["actor_id"]) == phone_set["user"]["id"] and '"laptop"' in row["details"]


async def test_every_session_of_the_device_ends(api: Api, backend: str) -> None:
    await register(api, "bob")
    first = await _sign_in(api, "bob", "tablet", "Tablet")
    second = await _sign_in(api, "bob", "tablet", "Tablet")  # the same device signed in twice
    other = signed_in(api, await _sign_in(api, "bob", "phone", "Phone"))
    _, listed = await other.call("GET", "/api/v1/me/devices")
    assert [d["id"] for d in listed["items"]].count("tablet") == 1
    assert await other.call("DELETE", "/api/v1/me/devices/tablet") == (204, "")
    for tokens in (first, second):
        assert_error(await signed_in(api, tokens).call("GET", "/api/v1/me"), 401, "unauthorized")


async def test_another_users_device_is_indistinguishable_from_an_unknown_one(api: Api, backend: str) -> None:
    await register(api, "bob")
    bob = signed_in(api, await _sign_in(api, "bob", "phone", "Phone"))
    alice = signed_in(api, await register(api, "alice"))
    unknown = assert_error(await alice.call("DELETE", "/api/v1/me/devices/no-such-device"), 404, "not_found")
    foreign = assert_error(await alice.call("DELETE", "/api/v1/me/devices/phone"), 404, "not_found")
    assert unknown == foreign
    assert (await bob.call("GET", "/api/v1/me"))[0] == 200
    _, listed = await alice.call("GET", "/api/v1/me/devices")
    assert "phone" not in {d["id"] for d in listed["items"]}


async def test_signing_out_the_current_device_is_a_logout(api: Api, backend: str) -> None:
    await register(api, "bob")
    phone_set = await _sign_in(api, "bob", "phone", "Phone")
    phone = signed_in(api, phone_set)
    async with api.client.ws_connect(f"/ws?token={phone_set['access_token']}") as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
        assert await phone.call("DELETE", "/api/v1/me/devices/phone") == (204, "")
        assert await ws.receive_json(timeout=10) == {"type": "kick", "reason": "signed_out"}
    assert_error(await phone.call("GET", "/api/v1/me/devices"), 401, "unauthorized")


async def test_another_process_signing_a_device_out_reaches_this_nodes_sockets(api: Api, backend: str) -> None:
    """A sign-out made elsewhere (another node) reaches this node's sockets through the
    revocation feed, with the same kick reason."""
    await register(api, "bob")
    tokens = await _sign_in(api, "bob", "laptop", "Laptop")
    async with api.client.ws_connect(f"/ws?token={tokens['access_token']}") as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
        await api.core.db.execute("test_other_node", "UPDATE token_families SET revoked_at = ?, revoked_reason = "
                                  "'signed_out' WHERE device_id = 'laptop'", (api.core.clock.now_ms(),))
        assert await api.core.auth.revocations.poll() == 1
        assert await ws.receive_json(timeout=10) == {"type": "kick", "reason": "signed_out"}


async def test_an_id_no_device_can_have_is_404(api: Api, backend: str) -> None:
    bob = signed_in(api, await register(api, "bob"))
    for device_id in ("a%00b", "x" * 129):
        assert_error(await bob.call("DELETE", f"/api/v1/me/devices/{device_id}"), 404, "not_found")
