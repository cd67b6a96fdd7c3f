"""Read receipts, typing, recall within the window, and edits."""

from __future__ import annotations

from .conftest import Chat, assert_error, direct_id


async def test_read_sends_a_receipt_and_moves_the_cursor_and_unread(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    b = await chat.connect(bob)
    cid = direct_id(alice, bob)
    for i in range(3):
        await a_laptop.send_text(bob.id, f"m{i}", f"m{i}")
    assert len(await b.barrier()) == 3
    await a_phone.barrier()

    status, page = await bob.api.call("GET", "/api/v1/conversations")
    assert status == 200
    [item] = page["items"]
    assert (item["last_seq"], item["read_seq"], item["unread"]) == (3, 0, 3)
    status, page = await alice.api.call("GET", "/api/v1/conversations")
    [item] = page["items"]
    assert (item["last_seq"], item["read_seq"], item["unread"]) == (3, 3, 0)  # one's own are read

    await b.send({"type": "read", "conversation_id": cid, "seq": 2})
    # `read` has no reply, and the reader gets no receipt of its own; once the pong is back
    # the read is handled and the receipts are queued
    await b.nothing_pending()
    receipt = {"type": "receipt", "conversation_id": cid, "user_id": bob.id, "seq": 2}
    assert await a_laptop.barrier() == [receipt]
    assert await a_phone.barrier() == [receipt]

    status, page = await bob.api.call("GET", "/api/v1/conversations")
    [item] = page["items"]
    assert (item["read_seq"], item["unread"]) == (2, 1)

    # going backwards or repeating changes nothing and tells no one
    await b.send({"type": "read", "conversation_id": cid, "seq": 1})
    await b.send({"type": "read", "conversation_id": cid, "seq": 2})
    await b.nothing_pending()
    await a_laptop.nothing_pending()

    # over HTTP too
    status, _ = await bob.api.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": 3})
    assert status == 204
    assert await a_laptop.barrier() == [{**receipt, "seq": 3}]
    status, page = await bob.api.call("GET", "/api/v1/conversations")
    assert (page["items"][0]["read_seq"], page["items"][0]["unread"]) == (3, 0)

    # past the last message, or negative: validation_failed
    await b.send({"type": "read", "id": "r9", "conversation_id": cid, "seq": 9})
    assert_error(await b.recv(), "validation_failed", "r9", "seq")
    await b.send({"type": "read", "id": "rn", "conversation_id": cid, "seq": -1})
    assert_error(await b.recv(), "validation_failed", "rn", "seq")


async def test_typing_is_relayed_to_the_peer(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    b_laptop, b_phone = await chat.connect(bob), await chat.connect(bob, "phone")
    cid = direct_id(alice, bob)
    await a_laptop.send({"type": "typing", "conversation_id": cid})
    await a_laptop.nothing_pending()  # no reply; handled once the pong is back
    typing = {"type": "typing", "conversation_id": cid, "user_id": alice.id}
    assert await b_laptop.barrier() == [typing]
    assert await b_phone.barrier() == [typing]
    await a_phone.nothing_pending()

    carol = await chat.user("carol")
    c = await chat.connect(carol)
    await c.send({"type": "typing", "id": "t", "conversation_id": cid})
    assert_error(await c.recv(), "not_found", "t")
    await b_laptop.nothing_pending()


async def test_recall_within_the_window_updates_every_device(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    b = await chat.connect(bob)
    message = (await a_laptop.send_text(bob.id, "oops", "m1"))["message"]
    await b.barrier()
    await a_phone.barrier()

    chat.clock.advance(119)
    await a_laptop.send({"type": "recall", "id": "rc", "message_id": message["id"]})
    recalled = {**message, "body": {}, "recalled": True}
    updated = {"type": "message.updated", "message": recalled}
    # every member's every device, the recalling socket included (beside its `ok`)
    frames = await a_laptop.barrier()
    assert sorted(frames, key=lambda f: f["type"]) == [updated, {"type": "ok", "id": "rc"}]
    assert await a_phone.barrier() == [updated]
    assert await b.barrier() == [updated]

    status, page = await bob.api.call("GET", f"/api/v1/conversations/{direct_id(alice, bob)}/messages")
    assert page["items"] == [recalled]
    # a recalled message cannot be edited
    await a_laptop.send({"type": "edit", "id": "e", "message_id": message["id"], "body": {"text": "x"}})
    assert_error(await a_laptop.recv(), "forbidden", "e")


async def test_recall_after_the_window_is_forbidden(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    message = (await a.send_text(bob.id, "too late", "m1"))["message"]
    await b.barrier()
    chat.clock.advance(121)
    await a.send({"type": "recall", "id": "late", "message_id": message["id"]})
    assert_error(await a.recv(), "forbidden", "late")
    await b.nothing_pending()
    status, page = await bob.api.call("GET", f"/api/v1/conversations/{direct_id(alice, bob)}/messages")
    assert page["items"] == [message]


async def test_recall_and_edit_of_another_users_or_an_unknown_message(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    a, b, c = await chat.connect(alice), await chat.connect(bob), await chat.connect(carol)
    message = (await a.send_text(bob.id, "mine", "m1"))["message"]
    await b.barrier()

    await b.send({"type": "recall", "id": 1, "message_id": message["id"]})
    assert_error(await b.recv(), "forbidden", 1)
    await b.send({"type": "edit", "id": 2, "message_id": message["id"], "body": {"text": "yours"}})
    assert_error(await b.recv(), "forbidden", 2)
    # an outsider cannot even learn that the message exists
    await c.send({"type": "recall", "id": 3, "message_id": message["id"]})
    assert_error(await c.recv(), "not_found", 3)
    await c.send({"type": "edit", "id": 4, "message_id": message["id"], "body": {"text": "x"}})
    assert_error(await c.recv(), "not_found", 4)
    for frame_id, message_id in ((5, "123456789"), (6, "junk")):
        await a.send({"type": "recall", "id": frame_id, "message_id": message_id})
        assert_error(await a.recv(), "not_found", frame_id)
        await a.send({"type": "edit", "id": frame_id, "message_id": message_id, "body": {"text": "x"}})
        assert_error(await a.recv(), "not_found", frame_id)
    await a.nothing_pending()
    await b.nothing_pending()


async def test_edit_sets_edited_at_and_updates_every_device(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    b = await chat.connect(bob)
    message = (await a_laptop.send_text(bob.id, "helo", "m1"))["message"]
    await b.barrier()
    await a_phone.barrier()

    chat.clock.advance(600)  # editing has no window
    await a_phone.send({"type": "edit", "id": "ed", "message_id": message["id"], "body": {"text": "hello"}})
    edited = {**message, "body": {"text": "hello"}, "edited_at": chat.clock.now_ms()}
    updated = {"type": "message.updated", "message": edited}
    frames = await a_phone.barrier()
    assert sorted(frames, key=lambda f: f["type"]) == [updated, {"type": "ok", "id": "ed"}]
    assert await a_laptop.barrier() == [updated]
    assert await b.barrier() == [updated]

    status, page = await alice.api.call("GET", f"/api/v1/conversations/{direct_id(alice, bob)}/messages")
    assert page["items"] == [edited]
    # the new body is checked like a send's
    await a_laptop.send({"type": "edit", "id": "long", "message_id": message["id"], "body": {"text": "x" * 8001}})
    assert_error(await a_laptop.recv(), "validation_failed", "long", "body.text")
    # a sync after the edit returns the edited message
    result = await b.request({"type": "sync", "cursors": {}}, "sync.result")
    assert result["messages"] == [edited]
