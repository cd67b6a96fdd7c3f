"""Back on the bus after a Redis outage, a node drops the caches that broadcasts keep current:
what was broadcast while Redis was down never reached it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..chat.conftest import Chat, MakeChat, User, assert_error
from ..conftest import Api
from ..services import PrivateRedis


async def _bus_up(node: Chat) -> bool:
    status, body = await Api(node.client).call("GET", "/readyz")
    return status == 200 and bool(body["bus"]["ok"])


async def _wait_bus(nodes: list[Chat], up: bool) -> None:
    for _ in range(200):
        if all([(await _bus_up(n)) == up for n in nodes]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the nodes' bus never became {'up' if up else 'down'}")


async def test_a_block_made_while_redis_was_down_holds_on_the_other_node_once_it_is_back(
        make_chat: MakeChat, tmp_path: Path) -> None:
    redis = PrivateRedis(str(tmp_path))
    redis.start()
    try:
        settings = {"url": redis.url, "prefix": "lucky", "lease_s": 3}
        one, two = await make_chat(redis=settings), await make_chat(redis=settings)
        ann, bob = await one.user("ann"), await one.user("bob")
        ann_dev = await two.connect(User(Api(two.client, ann.token, ann.api.user), "ann"))
        await ann_dev.send_text(bob.id, "hi", "c1")  # node two caches whom bob blocks: nobody

        redis.kill()
        await _wait_bus([one, two], up=False)
        status, _ = await bob.api.call("PUT", f"/api/v1/blocks/{ann.id}")  # the broadcast is lost
        assert status == 204
        redis.start()
        await _wait_bus([one, two], up=True)
        await asyncio.sleep(0.2)  # the resync runs on the node's bus task

        reply = await ann_dev.request({"type": "send", "to": bob.id, "client_msg_id": "c2", "kind": "text",
                                       "body": {"text": "still there?"}}, "error")
        assert_error(reply, "blocked")
    finally:
        redis.kill()
