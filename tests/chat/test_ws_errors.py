"""Every error and close path of `/ws`: bad frames, limits, authentication, kick, Origin."""

from __future__ import annotations

import json

import pytest
from aiohttp import WSMsgType, WSServerHandshakeError

from .conftest import Chat, MakeChat, assert_error, direct_id


async def test_malformed_json_unknown_types_and_bad_fields_get_error_frames(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)

    await device.send_raw("{not json")
    frame = await device.recv()
    assert_error(frame, "invalid_frame")
    assert "id" not in frame
    # truncated JSON is malformed even when a field before the cut has the wrong type
    await device.send_raw('{"type": "ack", "id": 1, "conversation_id": "x", "seq": "one"')
    assert_error(await device.recv(), "invalid_frame")
    await device.send_raw("[1, 2, 3]")
    assert_error(await device.recv(), "invalid_frame")
    await device.send_raw('"ping"')
    assert_error(await device.recv(), "invalid_frame")
    await device.send({"id": "no-type"})
    assert_error(await device.recv(), "invalid_frame", "no-type")
    await device.send({"type": "dance", "id": "u1"})
    assert_error(await device.recv(), "invalid_frame", "u1")
    await device.ws.send_bytes(b'{"type": "ping"}')
    assert_error(await device.recv(), "invalid_frame")

    # a field of the wrong type, or missing: validation_failed naming it, with the frame's id
    await device.send({"type": "ack", "id": "a1", "conversation_id": direct_id(alice, bob), "seq": "one"})
    frame = await device.recv()
    assert_error(frame, "validation_failed", "a1", "seq")
    assert frame["details"]["reason"]
    await device.send({"type": "read", "id": "a2", "seq": 1})
    assert_error(await device.recv(), "validation_failed", "a2", "conversation_id")
    await device.send({"type": "send", "id": "a3", "to": bob.id, "client_msg_id": 5, "kind": "text",
                       "body": {"text": "x"}})
    assert_error(await device.recv(), "validation_failed", "a3", "client_msg_id")
    await device.send({"type": "sync", "id": "a4", "cursors": [], "limit": 5})
    assert_error(await device.recv(), "validation_failed", "a4", "cursors")

    # the connection is still open and works
    assert await device.request({"type": "ping"}, "pong")
    sent = await device.send_text(bob.id, "still here", "m1")
    assert sent["message"]["seq"] == 1


@pytest.mark.parametrize("bad", ["{oops", '{"type": "nope"}', '{"type": "ack", "seq": "x"}'])
async def test_twenty_bad_frames_in_a_row_close_with_1008(chat: Chat, bad: str) -> None:
    device = await chat.connect(await chat.user("alice"))
    for _ in range(19):
        await device.send_raw(bad)
        assert (await device.recv())["type"] == "error"
    assert await device.request({"type": "ping"}, "pong")  # a good frame ends the run
    for _ in range(19):
        await device.send_raw(bad)
        assert (await device.recv())["type"] == "error"
    await device.send_raw(bad)
    code, frames = await device.closed()
    assert code == 1008
    assert [f["type"] for f in frames] == ["error"]


async def test_a_frame_over_max_frame_bytes_closes_with_1009(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)
    # just under the limit is fine (a custom body this big fails validation, not the socket)
    await device.send_raw(json.dumps({"type": "ping", "id": "ok", "pad": "x" * (65536 - 100)}))
    assert await device.recv() == {"type": "pong", "id": "ok"}
    await device.send_raw(json.dumps({"type": "send", "to": bob.id, "client_msg_id": "big", "kind": "custom",
                                      "body": {"blob": "x" * 70_000}}))
    code, frames = await device.closed()
    assert code == 1009
    assert frames == []
    # nothing was stored
    status, page = await bob.api.call("GET", "/api/v1/conversations")
    assert status == 200 and page["items"] == []


async def test_the_frame_size_limit_is_configurable(make_chat: MakeChat) -> None:
    chat = await make_chat(chat={"max_frame_bytes": 1024})
    device = await chat.connect(await chat.user("alice"))
    await device.send_raw(json.dumps({"type": "ping", "pad": "x" * 2000}))
    assert (await device.closed())[0] == 1009


async def test_sending_too_fast_is_rate_limited_without_closing(make_chat: MakeChat) -> None:
    chat = await make_chat(chat={"send_rate_per_s": 1, "send_burst": 2})
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    for i in range(2):
        await a.send_text(bob.id, f"m{i}", f"m{i}")
    # far more than 20 dropped sends in a row: rate_limited is not a bad frame
    for i in range(25):
        await a.send({"type": "send", "id": f"x{i}", "to": bob.id, "client_msg_id": f"x{i}", "kind": "text",
                      "body": {"text": "spam"}})
        frame = await a.recv()
        assert_error(frame, "rate_limited", f"x{i}")
    # edit and recall share the bucket
    await a.send({"type": "edit", "id": "e", "message_id": "1", "body": {"text": "x"}})
    assert_error(await a.recv(), "rate_limited", "e")
    await a.send({"type": "recall", "id": "r", "message_id": "1"})
    assert_error(await a.recv(), "rate_limited", "r")
    # other frames are not limited, and the socket is open
    assert await a.request({"type": "ping"}, "pong")
    await a.request({"type": "sync", "cursors": {}}, "sync.result")

    # the dropped sends were dropped: bob got the first two only, and nothing was stored
    assert [f["message"]["body"]["text"] for f in await b.barrier()] == ["m0", "m1"]
    status, page = await bob.api.call("GET", f"/api/v1/conversations/{direct_id(alice, bob)}/messages")
    assert [m["client_msg_id"] for m in page["items"]] == ["m0", "m1"]

    # the bucket is per connection: another device of the same user may send
    other = await chat.connect(alice, "phone")
    assert (await other.send_text(bob.id, "from the phone", "p1"))["message"]["seq"] == 3


async def test_ws_refuses_a_missing_forged_or_expired_token_with_401(chat: Chat) -> None:
    alice = await chat.user("alice")

    async def refused(token: str | None, path: str = "/ws") -> int:
        with pytest.raises(WSServerHandshakeError) as caught:
            await chat.open(token, path=path)
        return caught.value.status

    assert await refused(None) == 401
    assert await refused("not-a-jwt") == 401
    head, payload, _ = alice.token.split(".")
    assert await refused(f"{head}.{payload}.{'A' * 43}") == 401  # a forged signature
    assert await refused(None, "/ws?token=garbage") == 401

    # ?token= is accepted for browsers, which cannot set headers
    ws = await chat.open(path=f"/ws?token={alice.token}")
    assert (await ws.receive_json())["type"] == "welcome"
    await ws.close()

    chat.clock.advance(15 * 60 + 1)  # past the access token's lifetime
    assert await refused(alice.token) == 401
    assert await refused(None, f"/ws?token={alice.token}") == 401


async def test_http_logout_kicks_the_socket_of_that_device_only(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    laptop = await chat.connect(alice)
    phone = await chat.connect(alice, "phone")
    b = await chat.connect(bob)

    status, _ = await alice.api.call("POST", "/api/v1/auth/logout")
    assert status == 204
    code, frames = await laptop.closed()
    assert frames == [{"type": "kick", "reason": "logout"}]
    assert code == 4001

    # the other signed-in device and other users stay connected
    assert await phone.request({"type": "ping"}, "pong")
    assert (await phone.send_text(bob.id, "still here", "m1"))["message"]["seq"] == 1
    assert (await b.expect("message"))["message"]["client_msg_id"] == "m1"
    # and the revoked token cannot reconnect
    with pytest.raises(WSServerHandshakeError) as caught:
        await chat.open(alice.token)
    assert caught.value.status == 401


async def test_a_disallowed_origin_is_refused_with_403(chat: Chat) -> None:
    alice = await chat.user("alice")
    with pytest.raises(WSServerHandshakeError) as caught:
        await chat.open(alice.token, headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403
    # the server's own origin is fine, as is no Origin at all (native apps, bots)
    own = f"http://{chat.client.host}:{chat.client.port}"
    device = await chat.connect(alice, headers={"Origin": own})
    assert device.welcome["user_id"] == alice.id


async def test_an_allowed_origin_may_connect(make_chat: MakeChat) -> None:
    chat = await make_chat(server={"allowed_origins": ["https://app.example"]})
    alice = await chat.user("alice")
    device = await chat.connect(alice, headers={"Origin": "https://app.example"})
    assert device.welcome["user_id"] == alice.id
    with pytest.raises(WSServerHandshakeError) as caught:
        await chat.open(alice.token, headers={"Origin": "https://other.example"})
    assert caught.value.status == 403


async def test_a_silent_client_is_closed_after_the_heartbeat_timeout(make_chat: MakeChat) -> None:
    chat = await make_chat(chat={"heartbeat_s": 1})
    alice = await chat.user("alice")
    # a client that answers no protocol ping and sends nothing
    ws = await chat.client.ws_connect("/ws", headers={"Authorization": f"Bearer {alice.token}"}, autoping=False)
    chat._sockets.append(ws)
    welcome = await ws.receive_json()
    assert welcome["heartbeat_s"] == 1
    kinds = []
    while True:
        msg = await ws.receive(timeout=5)  # within twice heartbeat_s, give or take the loop
        kinds.append(msg.type)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
            break
    assert WSMsgType.PING in kinds  # the server pinged, and gave up on no answer


async def test_a_client_that_answers_pings_outlives_the_heartbeat_and_its_pings_are_answered(
        make_chat: MakeChat) -> None:
    # The server pings from its once-a-second sweep rather than from aiohttp's timers per
    # socket (docs/benchmarks.md, W3): a client that answers stays, and the server answers its pings.
    chat = await make_chat(chat={"heartbeat_s": 1})
    alice = await chat.user("alice")
    ws = await chat.client.ws_connect("/ws", headers={"Authorization": f"Bearer {alice.token}"}, autoping=False)
    chat._sockets.append(ws)
    assert (await ws.receive_json())["type"] == "welcome"
    pings = 0
    while pings < 3:  # three rounds of ping and pong: over four times the pong timeout
        msg = await ws.receive(timeout=5)
        assert msg.type == WSMsgType.PING, msg
        pings += 1
        await ws.pong(msg.data)
    await ws.ping(b"are you there")
    msg = await ws.receive(timeout=5)
    while msg.type == WSMsgType.PING:  # a heartbeat of the server's may come first
        await ws.pong(msg.data)
        msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.PONG, b"are you there")
    await ws.send_json({"type": "ping", "id": "p1"})
    reply = await ws.receive(timeout=5)
    while reply.type == WSMsgType.PING:
        await ws.pong(reply.data)
        reply = await ws.receive(timeout=5)
    assert json.loads(reply.data) == {"type": "pong", "id": "p1"}
