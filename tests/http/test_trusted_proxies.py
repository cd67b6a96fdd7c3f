"""Behind a proxy: the client's address comes from X-Forwarded-For only when the peer is trusted."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD, MakeApi


async def _address_seen(api_maker: MakeApi, forwarded: str | None, **server: object) -> str:
    api = await api_maker(server=server) if server else await api_maker()
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    status, body = await api.call("POST", "/api/v1/auth/register", {
        "username": "ann", "password": PASSWORD, "device": {"id": "phone"}}, headers=headers)
    assert status == 201, body
    api.token = body["access_token"]
    status, body = await api.call("GET", "/api/v1/me/devices")
    assert status == 200, body
    return str(body["items"][0]["ip"])


async def test_without_trusted_proxies_the_header_is_ignored(make_api: MakeApi) -> None:
    assert await _address_seen(make_api, "203.0.113.7") == "127.0.0.1"


async def test_a_trusted_proxy_gives_the_nearest_untrusted_hop(make_api: MakeApi) -> None:
    # the client wrote 1.2.3.4 itself; nginx appended the address it saw, 203.0.113.7
    seen = await _address_seen(make_api, "1.2.3.4, 203.0.113.7", trusted_proxies=["127.0.0.0/8"])
    assert seen == "203.0.113.7"


async def test_garbage_in_the_header_falls_back_to_the_peer(make_api: MakeApi) -> None:
    assert await _address_seen(make_api, "not-an-ip", trusted_proxies=["127.0.0.1"]) == "127.0.0.1"


async def test_a_bad_cidr_stops_the_start(make_api: MakeApi) -> None:
    with pytest.raises(Exception, match="server.trusted_proxies"):
        await make_api(server={"trusted_proxies": ["10.0.0.0/99"]})
