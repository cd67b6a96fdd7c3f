"""State shared across two nodes through Redis: QR sign-in wake-ups, rate limits, caches."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp

from lucky_server.bus import RedisKeys
from lucky_server.bus.redis_bus import connect
from lucky_server.clock import FakeClock
from lucky_server.auth.service import Device as LoginDevice
from lucky_server.keys import CORE
from lucky_server.shared_ratelimit import RedisLimiter

from ..chat.conftest import Chat, MakeChat, User
from ..conftest import Api
from ..console.conftest import ADMIN, ADMIN_PASSWORD, Console
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


async def _bus_caught_up(sender: Chat, receiver: Chat) -> None:
    """Wait until `receiver` has handled every broadcast `sender` made so far: a node handles
    the broadcasts of another in the order they were sent, so a marker sent now comes after."""
    seen = asyncio.Event()
    marker = uuid.uuid4().hex

    async def heard(payload: dict[str, Any]) -> None:
        if payload["marker"] == marker:
            seen.set()

    receiver.client.server.app[CORE].bus.on("test_marker", heard)
    await sender.client.server.app[CORE].bus.broadcast("test_marker", {"marker": marker})
    await asyncio.wait_for(seen.wait(), 10)


async def test_a_member_added_on_one_node_gets_the_next_message_sent_through_the_other(make_chat: MakeChat) -> None:
    one, two = await _nodes(make_chat)
    owner, bob, ann = await one.user("owner"), await one.user("bob"), await one.user("ann")
    status, group = await owner.api.call("POST", "/api/v1/groups", {"name": "g", "member_ids": [bob.id]})
    assert status == 201, group
    sender = await two.connect(User(Api(two.client, owner.token, owner.api.user), "owner"))
    ann_dev = await one.connect(ann)
    await asyncio.sleep(0.2)  # presence entries travel over pub/sub
    await sender.request({"type": "send", "group_id": group["id"], "client_msg_id": "before", "kind": "text",
                          "body": {"text": "before ann"}}, "sent")  # node two caches the members now

    status, body = await owner.api.call("POST", f"/api/v1/groups/{group['id']}/members", {"user_ids": [ann.id]})
    assert status == 201, body
    await _bus_caught_up(one, two)
    await sender.barrier()  # the system message of the addition
    sent = await sender.request({"type": "send", "group_id": group["id"], "client_msg_id": "after", "kind": "text",
                                 "body": {"text": "welcome ann"}}, "sent")
    texts = []
    while not texts or texts[-1] != "welcome ann":
        frame = await ann_dev.expect("message")
        texts.append(frame["message"]["body"].get("text"))
    assert "before ann" not in texts and frame["message"]["id"] == sent["message"]["id"]


async def test_a_block_on_one_node_stops_a_message_sent_through_the_other(make_chat: MakeChat) -> None:
    one, two = await _nodes(make_chat)
    ann, bob = await one.user("ann"), await one.user("bob")
    ann_dev = await two.connect(User(Api(two.client, ann.token, ann.api.user), "ann"))
    await ann_dev.send_text(bob.id, "hi", "c1")  # node two caches whom bob blocks: nobody
    status, _ = await bob.api.call("PUT", f"/api/v1/blocks/{ann.id}")
    assert status == 204
    await _bus_caught_up(one, two)
    await ann_dev.send({"type": "send", "to": bob.id, "client_msg_id": "c2", "kind": "text", "body": {"text": "x"}})
    reply = await ann_dev.expect("error")
    assert reply["code"] == "blocked", reply


async def test_a_release_published_on_one_node_is_offered_by_the_other_at_once(make_chat: MakeChat) -> None:
    one, two = await _nodes(make_chat, releases={"poll_s": 0})  # no poll: only the bus can tell node two
    core = one.client.server.app[CORE]
    root = await core.auth.create_user("root", None, is_admin=True)
    admin = Api(one.client, (await core.auth._start_session(root, LoginDevice(id="console"))).access_token)
    check = "/api/v1/releases/check?platform=android&version=0.9.0"
    status, body = await two.api.call("GET", check)
    assert status == 200 and body["latest"] is None, body  # node two caches "nothing published"

    form = aiohttp.FormData()
    for name, value in {"platform": "android", "version": "1.0.0", "publish": "true"}.items():
        form.add_field(name, value)
    form.add_field("file", b"package bytes", filename="app.bin", content_type="application/octet-stream")
    status, body = await admin.call("POST", "/api/v1/admin/releases", data=form)
    assert status == 201, body
    await _bus_caught_up(one, two)
    status, body = await two.api.call("GET", check)
    assert status == 200 and body["latest"]["version"] == "1.0.0", body


async def test_the_console_dashboard_counts_the_nodes_on_the_bus(make_chat: MakeChat) -> None:
    one, two = await _nodes(make_chat)
    await one.client.server.app[CORE].auth.create_user(ADMIN, ADMIN_PASSWORD, is_admin=True)
    console = Console(one.client)
    status, _, headers = await console.sign_in()
    assert status == 303, headers
    ann = await one.user("ann")
    await two.connect(User(Api(two.client, ann.token, ann.api.user), "ann"))  # node two speaks on the bus
    for _ in range(100):  # its presence entry travels over pub/sub
        async with one.client.get("/console/live.json") as resp:
            assert resp.status == 200
            if (await resp.json())["nodes"] == 2:
                break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("node one never counted node two")
    status, html, _ = await console.get("/console")
    assert status == 200 and '<strong data-live="nodes">2</strong> on the bus' in html
