"""Sending over WebSocket: welcome, ping, `sent`, the push to every device, order, dedup."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import Chat, assert_error, direct_id


async def test_welcome_describes_the_session(chat: Chat) -> None:
    alice = await chat.user("alice")
    device = await chat.connect(alice)
    welcome = device.welcome
    assert set(welcome) == {"type", "user_id", "device_id", "session_id", "heartbeat_s", "server_time"}
    assert welcome["user_id"] == alice.id
    assert welcome["device_id"] == "d0"
    assert isinstance(welcome["session_id"], str) and welcome["session_id"]
    assert welcome["heartbeat_s"] == 30
    assert welcome["server_time"] == chat.clock.now_ms()

    phone = await chat.connect(alice, "phone")
    assert phone.welcome["device_id"] == "phone"
    assert phone.welcome["session_id"] != welcome["session_id"]


async def test_ping_answers_pong_echoing_the_id(chat: Chat) -> None:
    device = await chat.connect(await chat.user("alice"))
    await device.send({"type": "ping", "id": "p-1"})
    assert await device.recv() == {"type": "pong", "id": "p-1"}
    await device.send({"type": "ping", "id": 7})
    assert await device.recv() == {"type": "pong", "id": 7}
    await device.send({"type": "ping"})
    assert await device.recv() == {"type": "pong"}


async def test_a_message_reaches_every_device_of_both_users_but_not_the_sending_socket(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop = await chat.connect(alice)
    a_phone = await chat.connect(alice, "phone")
    b_laptop = await chat.connect(bob)
    b_phone = await chat.connect(bob, "phone")
    b_tablet = await chat.connect(bob, "tablet")

    await a_laptop.send({"type": "send", "id": "f1", "to": bob.id, "client_msg_id": "m-1",
                         "kind": "text", "body": {"text": "hello bob"}})
    sent = await a_laptop.expect("sent")
    assert sent["id"] == "f1"
    message = sent["message"]
    assert message["conversation_id"] == direct_id(alice, bob)
    assert message["seq"] == 1
    assert message["sender_id"] == alice.id
    assert message["kind"] == "text"
    assert message["body"] == {"text": "hello bob"}
    assert message["client_msg_id"] == "m-1"
    assert message["created_at"] == chat.clock.now_ms()
    assert isinstance(message["id"], str) and message["id"].isdigit()
    assert "edited_at" not in message and "recalled" not in message

    for device in (b_laptop, b_phone, b_tablet, a_phone):
        assert await device.barrier() == [{"type": "message", "message": message}]
    # the sending connection got `sent`, not a second copy
    await a_laptop.nothing_pending()

    # and the other way round, from bob's phone
    reply = (await b_phone.send_text(alice.id, "hi alice", "r-1"))["message"]
    assert reply["seq"] == 2 and reply["sender_id"] == bob.id
    for device in (a_laptop, a_phone, b_laptop, b_tablet):
        assert await device.barrier() == [{"type": "message", "message": reply}]
    await b_phone.nothing_pending()


async def test_a_send_frame_without_an_id_gets_a_sent_without_an_id(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)
    await device.send({"type": "send", "to": bob.id, "client_msg_id": "x", "kind": "text", "body": {"text": "yo"}})
    sent = await device.expect("sent")
    assert "id" not in sent and sent["message"]["seq"] == 1


async def test_each_device_gets_seq_one_to_n_in_order_with_no_gaps(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    b_laptop, b_phone = await chat.connect(bob), await chat.connect(bob, "phone")
    count = 40
    # Sends pipelined from two senders at once, without waiting for each `sent`.
    for i in range(count // 2):
        await a_laptop.send({"type": "send", "id": i, "to": bob.id, "client_msg_id": f"a{i}",
                             "kind": "text", "body": {"text": f"a{i}"}})
        await b_laptop.send({"type": "send", "id": i, "to": alice.id, "client_msg_id": f"b{i}",
                             "kind": "text", "body": {"text": f"b{i}"}})

    async def collect(device: Any, own_sends: int) -> tuple[list[int], list[int]]:
        pushed: list[int] = []
        sent: list[int] = []
        while len(pushed) + len(sent) < count:
            frame = await device.recv()
            assert frame["type"] in ("message", "sent"), frame
            (pushed if frame["type"] == "message" else sent).append(frame["message"]["seq"])
        assert len(sent) == own_sends
        return pushed, sent

    for device in (a_phone, b_phone):
        pushed, _ = await collect(device, 0)
        assert pushed == list(range(1, count + 1))
    for device in (a_laptop, b_laptop):
        pushed, sent = await collect(device, count // 2)
        assert pushed == sorted(pushed)  # in seq order
        assert sent == sorted(sent)  # a connection's sends are stored in the order sent
        assert sorted(pushed + sent) == list(range(1, count + 1))

    # a sender's own messages are in the order it sent them
    status, page = await alice.api.call("GET", f"/api/v1/conversations/{direct_id(alice, bob)}/messages?limit=200")
    assert status == 200
    texts = [m["body"]["text"] for m in page["items"]]
    assert [m["seq"] for m in page["items"]] == list(range(1, count + 1))
    assert [t for t in texts if t[0] == "a"] == [f"a{i}" for i in range(count // 2)]
    assert [t for t in texts if t[0] == "b"] == [f"b{i}" for i in range(count // 2)]


async def test_a_repeated_client_msg_id_yields_the_same_message_and_no_second_push(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    b_laptop = await chat.connect(bob)

    first = await a_laptop.send_text(bob.id, "once", "same")
    assert (await b_laptop.expect("message"))["message"] == first["message"]
    assert (await a_phone.expect("message"))["message"] == first["message"]

    again = await a_laptop.send_text(bob.id, "once", "same")
    assert again["message"] == first["message"]
    # the same client_msg_id from another device of the same sender, even with another text
    other = await a_phone.send_text(bob.id, "changed my mind", "same")
    assert other["message"] == first["message"]
    # repeats in flight together, before any `sent`
    for frame_id in ("x1", "x2", "x3"):
        await a_laptop.send({"type": "send", "id": frame_id, "to": bob.id, "client_msg_id": "burst",
                             "kind": "text", "body": {"text": "burst"}})
    burst = [await a_laptop.expect("sent") for _ in range(3)]
    assert [f["id"] for f in burst] == ["x1", "x2", "x3"]
    assert len({f["message"]["id"] for f in burst}) == 1
    assert burst[0]["message"]["seq"] == 2

    assert await b_laptop.barrier() == [{"type": "message", "message": burst[0]["message"]}]
    assert await a_phone.barrier() == [{"type": "message", "message": burst[0]["message"]}]
    await a_laptop.nothing_pending()

    # another sender may use the same client_msg_id: it is per sender
    theirs = await b_laptop.send_text(alice.id, "mine", "same")
    assert theirs["message"]["seq"] == 3 and theirs["message"]["id"] != first["message"]["id"]

    status, page = await alice.api.call("GET", f"/api/v1/conversations/{direct_id(alice, bob)}/messages")
    assert status == 200
    assert [m["client_msg_id"] for m in page["items"]] == ["same", "burst", "same"]


async def test_repeats_in_the_batches_right_after_their_first_copy_get_the_first(make_chat: Any) -> None:
    """The writer stores a batch while it answers the one before: a repeat sent in waves,
    one or two batches behind its first copy, still gets that copy and pushes nothing."""
    chat = await make_chat(chat={"send_rate_per_s": 1000, "send_burst": 1000, "frame_rate_per_s": 0})
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    count = 60
    frames = 0
    for i in range(count):
        await a.send({"type": "send", "id": f"n{i}", "to": bob.id, "client_msg_id": f"m{i}",
                      "kind": "text", "body": {"text": f"m{i}"}})
        frames += 1
        if i >= 2:
            await a.send({"type": "send", "id": f"r{i - 2}", "to": bob.id, "client_msg_id": f"m{i - 2}",
                          "kind": "text", "body": {"text": "a repeat"}})
            frames += 1
        if i % 7 == 0:
            await asyncio.sleep(0.002)  # waves: some arrive while a batch is stored
    sent: dict[str, dict[str, Any]] = {}
    for _ in range(frames):
        frame = await a.expect("sent")
        sent[frame["id"]] = frame["message"]
    for i in range(count - 2):
        assert sent[f"r{i}"] == sent[f"n{i}"], i
    assert [sent[f"n{i}"]["seq"] for i in range(count)] == list(range(1, count + 1))
    pushed = [(await b.expect("message"))["message"] for _ in range(count)]
    assert pushed == [sent[f"n{i}"] for i in range(count)]
    assert await b.barrier() == []


async def test_a_repeat_among_new_sends_costs_them_no_seq_and_no_answer(chat: Chat) -> None:
    """A batch is first stored without looking for repeats of stored sends (the unique index
    refuses one); stored again looking for them, its new sends still get seqs with no gap."""
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    first = (await a.send_text(bob.id, "first", "m0"))["message"]
    assert (await b.expect("message"))["message"] == first
    for frame_id, cmid in (("n1", "m1"), ("r0", "m0"), ("n2", "m2"), ("n3", "m3")):
        await a.send({"type": "send", "id": frame_id, "to": bob.id, "client_msg_id": cmid,
                      "kind": "text", "body": {"text": cmid}})
    sent: dict[str, dict[str, Any]] = {}
    for _ in range(4):
        frame = await a.expect("sent")
        sent[frame["id"]] = frame["message"]
    assert sent["r0"] == first
    assert [sent[f]["seq"] for f in ("n1", "n2", "n3")] == [2, 3, 4]
    pushed = [(await b.expect("message"))["message"] for _ in range(3)]
    assert pushed == [sent["n1"], sent["n2"], sent["n3"]]
    assert await b.barrier() == []


async def test_send_by_conversation_id_and_reply_to(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    cid = direct_id(alice, bob)
    first = (await a.send_text(bob.id, "question?", "q"))["message"]
    await b.expect("message")
    answer = await b.request({"type": "send", "conversation_id": cid, "client_msg_id": "a", "kind": "text",
                              "body": {"text": "answer"}, "reply_to": first["id"]}, "sent")
    assert answer["message"]["reply_to"] == first["id"]
    assert answer["message"]["seq"] == 2
    assert (await a.expect("message"))["message"] == answer["message"]

    # reply_to must be a message of the same conversation
    carol = await chat.user("carol")
    c = await chat.connect(carol)
    await c.send({"type": "send", "id": "r", "to": alice.id, "client_msg_id": "c1", "kind": "text",
                  "body": {"text": "hm"}, "reply_to": first["id"]})
    assert_error(await c.recv(), "validation_failed", "r", "reply_to")


async def test_send_target_errors(chat: Chat) -> None:
    alice = await chat.user("alice")
    bob = await chat.user("bob")
    device = await chat.connect(alice)
    base = {"type": "send", "client_msg_id": "m", "kind": "text", "body": {"text": "hi"}}

    await device.send({**base, "id": 1, "to": "999999999"})
    assert_error(await device.recv(), "not_found", 1)
    await device.send({**base, "id": 2, "to": alice.id})
    assert_error(await device.recv(), "validation_failed", 2, "to")
    await device.send({**base, "id": 3})
    assert_error(await device.recv(), "validation_failed", 3, "to")
    await device.send({**base, "id": 4, "to": bob.id, "conversation_id": direct_id(alice, bob)})
    assert_error(await device.recv(), "validation_failed", 4, "to")
    await device.send({**base, "id": 5, "to": bob.id, "client_msg_id": ""})
    assert_error(await device.recv(), "validation_failed", 5, "client_msg_id")
    await device.send({**base, "id": 6, "to": bob.id, "client_msg_id": "x" * 65})
    assert_error(await device.recv(), "validation_failed", 6, "client_msg_id")
    await device.send({**base, "id": 7, "to": "not-an-id"})
    assert_error(await device.recv(), "validation_failed", 7, "to")
    # a conversation the sender is not in
    carol = await chat.user("carol")
    await device.send({**base, "id": 8, "conversation_id": direct_id(bob, carol)})
    assert_error(await device.recv(), "not_found", 8)
    # 64 characters is still fine
    sent = await device.send_text(bob.id, "ok", "y" * 64)
    assert sent["message"]["seq"] == 1


async def test_a_device_that_stops_reading_is_closed_1013_and_catches_up_by_sync(make_chat: Any) -> None:
    # Bob's socket stops reading: the client's buffer, then the kernel's, then the server's fill
    # (about 6 MB on loopback before the server holds anything). Past 4 MiB held for one
    # socket, the server writes nothing more to it and closes it (1013) after what it holds;
    # the sender is never slowed down, and nothing is lost: bob syncs after reconnecting.
    chat = await make_chat(chat={"send_rate_per_s": 100000, "send_burst": 100000, "frame_rate_per_s": 0})
    alice, bob = await chat.user("alice"), await chat.user("bob")
    sender = await chat.connect(alice)
    stalled = await chat.connect(bob)
    text, count = "x" * 8000, 2500  # 20 MB: far more than the kernel and 4 MiB hold together
    for start in range(0, count, 100):
        for n in range(start + 1, start + 101):
            await sender.send({"type": "send", "to": bob.id, "client_msg_id": f"m{n}", "kind": "text",
                               "body": {"text": text}})
        for _ in range(100):
            assert (await sender.recv())["type"] == "sent"  # answered at full speed throughout

    code, frames = await stalled.closed()
    assert code == 1013
    assert 0 < len(frames) < count
    assert [f["message"]["seq"] for f in frames] == list(range(1, len(frames) + 1))

    again = await chat.connect(bob, "d0-again")
    result = await again.request({"type": "sync", "cursors": {direct_id(alice, bob): len(frames)}, "limit": 100},
                                 "sync.result")
    assert [m["seq"] for m in result["messages"]] == list(range(len(frames) + 1, min(count, len(frames) + 100) + 1))
    assert result["messages"][0]["body"] == {"text": text}
