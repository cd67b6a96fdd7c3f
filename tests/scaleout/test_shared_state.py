"""State shared across two nodes through Redis: QR sign-in wake-ups, rate limits, caches."""

from __future__ import annotations

import asyncio
from typing import Any

from lucky_server.keys import CORE

from ..chat.conftest import MakeChat
from ..conftest import Api
from ..services import REDIS_URL, redis_prefix
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
