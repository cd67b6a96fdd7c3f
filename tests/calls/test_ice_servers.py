"""`GET /api/v1/calls/ice-servers`: STUN and TURN for WebRTC, TURN credentials coturn accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from lucky_server.app import build_app
from lucky_server.calls.ice import turn_credential
from lucky_server.clock import FakeClock

from ..conftest import Api, MakeConfig

SECRET = "coturn static-auth-secret"


def test_the_credential_matches_a_known_answer() -> None:
    # printf '%s' "1800086400:42" | openssl dgst -sha1 -hmac "coturn-secret" -binary | base64
    assert turn_credential("coturn-secret", "1800086400:42") == "cbBShXD3Oqdv+fzli2YiAIHFAP4="


async def test_stun_turn_and_the_sfu(make_config: MakeConfig, aiohttp_client: Any, clock: FakeClock) -> None:
    config = make_config(calls={"stun_urls": ["stun:stun.example.org:3478"],
                                "turn_urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
                                "turn_secret": SECRET, "turn_ttl_s": 600, "sfu_url": "https://sfu.example.org"})
    api = Api(await aiohttp_client(build_app(config, clock=clock)))
    status, body = await api.call("GET", "/api/v1/calls/ice-servers")
    assert status == 401 and body["error"]["code"] == "unauthorized"

    alice = await api.register("alice")
    async with alice.client.get("/api/v1/calls/ice-servers", headers=alice.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
    stun, turn = body["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.org:3478"]}
    assert turn["urls"] == ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
    assert body["ttl"] == 600 and body["sfu_url"] == "https://sfu.example.org"

    # draft-uberti-behave-turn-rest-00 §2.2: username "<expiry timestamp>:<user>", password
    # base64(HMAC-SHA1(shared secret, username)); coturn (use-auth-secret) refuses an expiry passed.
    expiry, user = turn["username"].split(":")
    now_s = clock.now_ms() // 1000
    assert user == str(alice.user["id"]) and int(expiry) == now_s + 600 > now_s
    expected = base64.b64encode(hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest())
    assert turn["credential"] == expected.decode()

    clock.advance(60)  # each answer is fresh
    _, later = await alice.call("GET", "/api/v1/calls/ice-servers")
    assert int(later["ice_servers"][1]["username"].split(":")[0]) == now_s + 660


async def test_no_turn_without_a_secret(make_config: MakeConfig, aiohttp_client: Any, clock: FakeClock) -> None:
    config = make_config(calls={"turn_urls": ["turn:turn.example.org:3478"]})
    alice = await Api(await aiohttp_client(build_app(config, clock=clock))).register("alice")
    status, body = await alice.call("GET", "/api/v1/calls/ice-servers")
    assert status == 200 and body == {"ice_servers": [], "ttl": 86400}
