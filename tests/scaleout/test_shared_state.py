"""State shared across two nodes through Redis: QR sign-in wake-ups, rate limits, caches."""

from __future__ import annotations

import asyncio
from typing import Any

from lucky_server.bus import RedisKeys
from lucky_server.bus.redis_bus import connect
from lucky_server.clock import FakeClock
from lucky_server.keys import CORE
from lucky_server.shared_ratelimit import RedisLimiter

from ..chat.conftest import MakeChat
from ..conftest import Api
from ..services import REDIS_URL, free_port, redis_prefix
from .conftest import TwoNodes


def _redis(**extra: Any) -> dict[str, Any]:
    return {"url": REDIS_URL, "prefix": redis_prefix(), "lease_s": 3, **extra}


async def _nodes(make_chat: MakeChat, **sections: dict[str, Any]) -> TwoNodes:
    redis = _redis()
    return await make_chat(redis=redis, **sections), await make_chat(redis=redis, **sections)


async def test_a_qr_scanned_on_another_node_answers_the_long_poll_at_once(make_chat: MakeChat) -> None:
    # The safety re-read is a minute away and the poll waits 20 s: only the bus can wake it.
    one, two = await _nodes(make_chat, auth={"qr_reread_s": 60})
    bob = await one.user("bob")
    phone = Api(two.client, bob.token)
    status, created = await one.api.call("POST", "/api/v1/auth/qr", {"device": {"name": "Office PC"}})
    assert status == 201, created
    path = f"/api/v1/auth/qr/{created['qr_id']}?poll_token={created['poll_token']}&wait=20"

    poll = asyncio.create_task(one.api.call("GET", path))
    while one.client.server.app[CORE].qr.waiting() == 0:
        await asyncio.sleep(0.01)
    assert await phone.call("POST", f"/api/v1/auth/qr/{created['qr_id']}/scan") == (204, "")
    status, seen = await asyncio.wait_for(poll, 10)  # a guard against hanging, not a speed assert
    assert status == 200 and seen["state"] == "scanned", seen
    assert seen["scanned_by"]["id"] == bob.api.user["id"]

    poll = asyncio.create_task(one.api.call("GET", path))
    while one.client.server.app[CORE].qr.waiting() == 0:
        await asyncio.sleep(0.01)
    assert await phone.call("POST", f"/api/v1/auth/qr/{created['qr_id']}/confirm") == (204, "")
    status, signed_in = await asyncio.wait_for(poll, 10)
    assert status == 200 and signed_in["state"] == "confirmed" and signed_in["access_token"], signed_in
    status, me = await Api(two.client, signed_in["access_token"]).call("GET", "/api/v1/me")
    assert status == 200 and me["id"] == bob.api.user["id"]


async def test_the_sign_in_limit_per_address_holds_for_the_nodes_together(make_chat: MakeChat) -> None:
    one, two = await _nodes(make_chat, auth={"ip_rate_per_min": 6})
    for node in (one, two, one, two, one, two):  # six: the limit, half on each node
        status, body = await node.api.call("POST", "/api/v1/auth/qr")
        assert status == 201, body
    for node in (one, two):  # each node alone saw only three
        status, body = await node.api.call("POST", "/api/v1/auth/qr")
        assert status == 429 and body["error"]["code"] == "rate_limited", body


async def test_the_link_limit_per_user_holds_for_the_nodes_together(make_chat: MakeChat) -> None:
    one, two = await _nodes(make_chat, links={"create_per_min": 4})
    ann = await one.user("ann")
    apis = (ann.api, Api(two.client, ann.token, ann.api.user))
    for i in range(4):
        status, body = await apis[i % 2].call("POST", "/api/v1/links", {"url": f"https://example.com/{i}"})
        assert status == 201, body
    status, body = await apis[1].call("POST", "/api/v1/links", {"url": "https://example.com/more"})
    assert status == 429 and body["error"]["code"] == "rate_limited", body


async def test_a_limiter_whose_redis_is_down_limits_in_process_instead_of_refusing(clock: FakeClock) -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}")  # nothing listens there
    limiter = RedisLimiter(client, RedisKeys(redis_prefix()), "auth_ip", clock, 2, 60.0)
    try:
        assert [await limiter.hit("10.0.0.1") for _ in range(2)] == [0, 0]  # signs in despite Redis
        assert await limiter.hit("10.0.0.1") > 0  # and this node still limits
        assert await limiter.hit("10.0.0.2") == 0
    finally:
        await client.aclose()
