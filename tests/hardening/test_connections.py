"""Sockets and connections cost what the contract allows, no more (issue 9, PROTOCOL.md
"Limits on every input"): a socket's token expires on it unless renewed with `auth`; every
frame counts against a budget and `typing` is throttled; sockets are capped per user and per
address; slow and malformed clients are cut off without a bearer token reaching the log; and
the per-IP limit comes before any RSA work and forgets the addresses it no longer limits.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import orjson
import pytest
from aiohttp import WSServerHandshakeError

from lucky_server.clock import FakeClock
from lucky_server.ratelimit import RateLimiter

from ..chat.conftest import Chat, Device, MakeChat, User, assert_error, chat, direct_id, http_error, make_chat  # noqa: F401
from ..conftest import Api

TTL_S = 900  # auth.access_ttl_s's default: every token below lives this long
TIMEOUT = 5.0  # seconds to wait for what the server owes us; a failure, never a pause

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])  # no storage involved


async def post_text(sender: User, to: User, text: str, cmid: str) -> None:
    status, body = await sender.api.call("POST", f"/api/v1/conversations/{direct_id(sender, to)}/messages",
                                         {"client_msg_id": cmid, "kind": "text", "body": {"text": text}})
    assert status == 201, body


# --- a socket's token expires on it, unless renewed ------------------------------------------------

async def test_a_socket_not_renewed_is_kicked_token_expired_and_closed_4001(chat: Chat, clock: FakeClock) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)
    await post_text(bob, alice, "hello", "m1")
    assert (await device.expect("message"))["message"]["body"] == {"text": "hello"}

    clock.advance(TTL_S - 1)
    assert await device.request({"type": "ping"}, "pong")  # still usable before `exp`
    clock.advance(1)
    code, frames = await device.closed()
    assert frames == [{"type": "kick", "reason": "token_expired"}]
    assert code == 4001


async def test_a_socket_renewed_with_auth_outlives_its_first_token(chat: Chat, clock: FakeClock) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)  # device d0; its token expires at TTL_S

    clock.advance(600)
    fresh = await chat.login(alice, "d0")  # the same device, signed in again: expires at 600 + TTL_S
    answer = await device.request({"type": "auth", "access_token": fresh}, "ok")
    assert set(answer) == {"type", "id"}

    # A message pushed now and not acked is pushed again by the sweep that runs once the clock
    # has passed the first token's expiry: its arrival shows that sweep ran, and kicked nothing.
    await post_text(bob, alice, "hello", "m1")
    first = await device.expect("message")
    clock.advance(TTL_S - 600 + 100)
    again = await device.expect("message")
    assert again["message"]["id"] == first["message"]["id"]
    assert await device.request({"type": "ping"}, "pong")

    # The new token's expiry holds in turn.
    clock.advance(500)
    code, frames = await device.closed()
    assert frames == [{"type": "kick", "reason": "token_expired"}]
    assert code == 4001


async def test_after_a_renewal_the_new_tokens_logout_kicks_the_socket(chat: Chat) -> None:
    alice = await chat.user("alice")
    device = await chat.connect(alice)
    fresh = await chat.login(alice, "d0")  # a new session (token family) of the same device
    await device.request({"type": "auth", "access_token": fresh}, "ok")

    status, _ = await Api(chat.client, fresh).call("POST", "/api/v1/auth/logout")
    assert status == 204
    code, frames = await device.closed()
    assert frames == [{"type": "kick", "reason": "logout"}]
    assert code == 4001


async def test_auth_with_a_token_not_of_this_socket_is_unauthorized_and_changes_nothing(
        chat: Chat, clock: FakeClock) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)
    other_device = await chat.login(alice, "d1")
    revoked = await chat.login(alice, "d0")  # the same device, but a session since signed out
    status, _ = await Api(chat.client, revoked).call("POST", "/api/v1/auth/logout")
    assert status == 204

    # bob's, another device's, a revoked one, garbage, nothing
    for index, token in enumerate([bob.token, other_device, revoked, "not.a.jwt", ""]):
        await device.send({"type": "auth", "id": f"t{index}", "access_token": token})
        assert_error(await device.recv(), "unauthorized", f"t{index}")
    await device.send({"type": "auth", "id": "missing"})
    assert_error(await device.recv(), "validation_failed", "missing", "access_token")

    # The socket still works, as alice's d0, and still on its own token.
    sent = await device.send_text(bob.id, "still here", "m1")
    assert sent["message"]["sender_id"] == alice.id
    clock.advance(TTL_S)  # none of them renewed it: the socket's own token has expired
    code, frames = await device.closed()
    assert frames == [{"type": "kick", "reason": "token_expired"}]
    assert code == 4001


async def test_auth_with_an_expired_token_is_unauthorized(chat: Chat, clock: FakeClock) -> None:
    alice = await chat.user("alice")
    old = await chat.login(alice, "d0")
    clock.advance(10)
    device = await chat.connect(alice, "d0")  # a socket on a token 10 s younger than `old`
    clock.advance(TTL_S - 5)  # `old` has expired; the socket's token has 5 s left
    await device.send({"type": "auth", "id": "late", "access_token": old})
    assert_error(await device.recv(), "unauthorized", "late")
    assert await device.request({"type": "ping"}, "pong")


# --- the frame budget and the typing throttle ---------------------------------------------------

async def test_the_default_frame_budget_is_a_burst_of_100(chat: Chat, clock: FakeClock) -> None:
    device = await chat.connect(await chat.user("alice"))
    for index in range(100):  # the clock stands still: no refill, only the burst
        await device.send({"type": "ping", "id": index})
    for index in range(100):
        assert await device.recv() == {"type": "pong", "id": index}
    await device.send({"type": "ping", "id": "over"})
    assert_error(await device.recv(), "rate_limited", "over")
    clock.advance(1)  # 50 a second
    for index in range(50):
        await device.send({"type": "ping", "id": index})
    for index in range(50):
        assert await device.recv() == {"type": "pong", "id": index}
    await device.send({"type": "ping", "id": "over again"})
    assert_error(await device.recv(), "rate_limited", "over again")


async def test_frames_over_the_budget_are_dropped_with_rate_limited_and_the_socket_stays(
        make_chat: MakeChat, clock: FakeClock) -> None:
    chat = await make_chat(chat={"frame_rate_per_s": 2, "frame_burst": 3})
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    cid = direct_id(alice, bob)
    await a.send_text(bob.id, "one", "m1")
    assert (await b.expect("message"))["message"]["seq"] == 1
    assert await a.request({"type": "ping"}, "pong")
    await a.send({"type": "ping", "id": "last"})  # the burst's third frame
    assert (await a.recv()) == {"type": "pong", "id": "last"}

    # More than 20 over-budget frames of every kind, bad ones too: each answered rate_limited
    # with its id (none for a frame without one), nothing done, and the socket stays open.
    frames: list[Any] = [
        {"type": "read", "id": "r", "conversation_id": cid, "seq": 1},
        {"type": "typing", "id": "t", "conversation_id": cid},
        {"type": "send", "id": "s", "to": bob.id, "client_msg_id": "m2", "kind": "text", "body": {"text": "two"}},
        {"type": "sync", "id": "y", "cursors": {}},
        {"type": "dance", "id": "d"},
    ]
    for round_ in range(5):
        for frame in frames:
            await a.send({**frame, "id": f"{frame['id']}{round_}"})
            assert_error(await a.recv(), "rate_limited", f"{frame['id']}{round_}")
        await a.send_raw("{not json")
        frame = await a.recv()
        assert_error(frame, "rate_limited")
        assert "id" not in frame
    await b.nothing_pending()  # no receipt, no typing, no message reached bob

    clock.advance(1)  # two more frames
    assert await a.request({"type": "ping"}, "pong")
    again = await a.send_text(bob.id, "two", "m2")
    assert again["message"]["seq"] == 2  # the dropped send of m2 was never stored


async def test_typing_is_relayed_once_per_two_seconds_per_conversation(chat: Chat, clock: FakeClock) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    a, b, c = await chat.connect(alice), await chat.connect(bob), await chat.connect(carol)
    to_bob, to_carol = direct_id(alice, bob), direct_id(alice, carol)

    for _ in range(60):
        await a.send({"type": "typing", "conversation_id": to_bob})
    await a.send({"type": "typing", "conversation_id": to_carol})  # another conversation: its own clock
    assert await a.barrier() == []  # extra typing frames are dropped silently, no error
    assert await b.barrier() == [{"type": "typing", "conversation_id": to_bob, "user_id": alice.id}]
    assert await c.barrier() == [{"type": "typing", "conversation_id": to_carol, "user_id": alice.id}]

    clock.advance(1.9)
    await a.send({"type": "typing", "conversation_id": to_bob})
    assert await a.barrier() == []
    await b.nothing_pending()
    clock.advance(0.1)
    for _ in range(3):
        await a.send({"type": "typing", "conversation_id": to_bob})
    assert await a.barrier() == []
    assert await b.barrier() == [{"type": "typing", "conversation_id": to_bob, "user_id": alice.id}]

    # Per connection: alice's other device has its own throttle.
    other = await chat.connect(alice, "d1")
    await other.send({"type": "typing", "conversation_id": to_bob})
    assert await other.barrier() == []
    assert await b.barrier() == [{"type": "typing", "conversation_id": to_bob, "user_id": alice.id}]


# --- caps on open sockets -----------------------------------------------------------------------

async def open_refused(chat: Chat, token: str) -> None:
    """An upgrade over a cap is 429 before the upgrade, in the contract's shape."""
    with pytest.raises(WSServerHandshakeError) as refused:
        await chat.open(token)
    assert refused.value.status == 429
    async with chat.client.get("/ws", headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 429
        body = await resp.json()
        assert body["error"]["code"] == "rate_limited", body
        assert int(resp.headers["Retry-After"]) >= 1


async def open_once_released(chat: Chat, token: str) -> Any:
    """Open a socket once the server has counted a closed one out (it does so as its handler
    ends, which may follow the close handshake); each try is a real request, never a sleep."""
    for _ in range(100):
        try:
            return await chat.open(token)
        except WSServerHandshakeError as refused:
            assert refused.status == 429
            assert (await chat.api.call("GET", "/healthz"))[0] == 200
    raise AssertionError("the closed socket was never counted out")


@sqlite_only
async def test_sockets_per_user_are_capped(make_chat: MakeChat) -> None:
    chat = await make_chat(chat={"max_sockets_per_user": 2})
    alice, bob = await chat.user("alice"), await chat.user("bob")
    first = await chat.connect(alice)
    await chat.connect(alice, "d1")
    await open_refused(chat, await chat.login(alice, "d2"))
    assert await first.request({"type": "ping"}, "pong")  # the open ones are untouched
    await chat.connect(bob)  # another user is not held to alice's count

    await first.close()
    ws = await open_once_released(chat, alice.token)
    assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "welcome"


@sqlite_only
async def test_sockets_per_address_are_capped(make_chat: MakeChat) -> None:
    chat = await make_chat(chat={"max_sockets_per_ip": 3})
    users = [await chat.user(name) for name in ("alice", "bob", "carol", "dave")]
    devices = [await chat.connect(user) for user in users[:3]]
    await open_refused(chat, users[3].token)
    await devices[0].close()
    ws = await open_once_released(chat, users[3].token)
    assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "welcome"


# --- slow clients -------------------------------------------------------------------------------

SLOW = {"server": {"header_timeout_s": 0.2, "body_timeout_s": 0.3}}


async def raw_connection(chat: Chat) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server = chat.client.server
    assert server.host is not None and server.port is not None
    return await asyncio.open_connection(server.host, server.port)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes; fails if it keeps the connection open."""
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"the server still holds the connection after {TIMEOUT} s") from None


@sqlite_only
@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"POST /api/v1/auth/lo"],
                         ids=["silent", "half a head", "half a request line"])
async def test_a_client_that_never_finishes_its_request_head_is_closed(make_chat: MakeChat, sent: bytes) -> None:
    chat = await make_chat(**SLOW)
    reader, writer = await raw_connection(chat)
    writer.write(sent)
    await writer.drain()
    assert await read_to_eof(reader) == b""
    writer.close()
    assert (await chat.api.call("GET", "/healthz"))[0] == 200  # others are served all along


@sqlite_only
async def test_a_body_that_does_not_arrive_in_time_is_408_and_closed(make_chat: MakeChat) -> None:
    chat = await make_chat(**SLOW)
    reader, writer = await raw_connection(chat)
    body = orjson.dumps({"username": "alice", "password": "correct horse"})
    writer.write(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    await writer.drain()
    answer = await read_to_eof(reader)
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert orjson.loads(content)["error"]["code"] == "request_timeout"
    writer.close()

    # A body that arrives in time is answered as usual.
    status, answer_body = await chat.api.call("POST", "/api/v1/auth/login",
                                              {"username": "nobody", "password": "correct horse"})
    assert (status, answer_body["error"]["code"]) == (401, "invalid_credentials")


@sqlite_only
async def test_a_keep_alive_connection_serves_requests_within_the_head_timeout(make_chat: MakeChat) -> None:
    chat = await make_chat(**SLOW)
    reader, writer = await raw_connection(chat)
    for _ in range(3):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert status_line.startswith(b"HTTP/1.1 200"), status_line
        length = 0
        while (line := await asyncio.wait_for(reader.readline(), TIMEOUT)) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
    assert await read_to_eof(reader) == b""  # then idle: closed after the head timeout
    writer.close()


# --- what a malformed request leaves in the log --------------------------------------------------

@sqlite_only
async def test_an_over_long_header_is_4xx_and_keeps_the_token_out_of_the_log(
        chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "SeCrEtToKeN" + "x" * 20_000
    reader, writer = await raw_connection(chat)
    writer.write(f"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\r\n".encode())
    await writer.drain()
    answer = await read_to_eof(reader)
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]
    assert any("malformed request" in record.getMessage() for record in caplog.records)  # still logged
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert "SeCrEt" not in text, record
    assert "SeCrEt" not in caplog.text


# --- the per-IP limit on the auth endpoints --------------------------------------------------

async def test_the_ip_limit_comes_before_decrypting_an_encrypted_password(make_chat: MakeChat) -> None:
    chat = await make_chat(auth={"ip_rate_per_min": 2})
    api = chat.api
    for _ in range(2):
        http_error(await api.call("POST", "/api/v1/auth/login", {"username": "alice", "password": "wrong password"}),
                   401, "invalid_credentials")
    garbage = base64.b64encode(b"\x01" * 512).decode()  # a ciphertext-sized blob that decrypts to nothing
    for path, body in (("/api/v1/auth/login", {"username": "alice", "encrypted_password": garbage}),
                       ("/api/v1/auth/register", {"username": "alice", "encrypted_password": garbage}),
                       ("/api/v1/auth/login", {"username": "alice", "encrypted_password": "%%% not base64"})):
        http_error(await api.call("POST", path, body), 429, "rate_limited")


async def test_an_undecryptable_password_is_still_422_within_the_ip_limit(make_chat: MakeChat) -> None:
    chat = await make_chat()
    http_error(await chat.api.call("POST", "/api/v1/auth/login", {"username": "alice", "encrypted_password": "abc"}),
               422, "validation_failed", "encrypted_password")


def test_the_limiter_forgets_keys_once_their_buckets_refill(clock: FakeClock) -> None:
    limiter = RateLimiter(clock, 60, 60.0)  # a token a second, bursts of 60: full again within 60 s
    for index in range(1000):
        assert limiter.hit(f"10.0.{index // 256}.{index % 256}") == 0
    assert limiter.tracked() == 1000

    clock.advance(59.5)
    for _ in range(60):
        limiter.hit("busy")
    assert limiter.hit("busy") > 0  # empty: limited
    assert limiter.tracked() == 1001

    clock.advance(0.5)  # a refill period since the start: the next hit prunes
    assert limiter.hit("new") == 0
    assert limiter.tracked() == 2  # "busy" (not refilled) and "new"; the 1,000 are forgotten
    assert limiter.hit("busy") > 0  # and "busy" is still limited: pruning forgot nothing it limits
    assert limiter.hit("10.0.0.1") == 0  # a forgotten key starts with a full bucket
