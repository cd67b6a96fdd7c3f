"""Catching up with `sync`, cumulative `ack`, and re-sends of what a device has not acked."""

from __future__ import annotations

from typing import Any

from .conftest import Chat, Device, User, assert_error, direct_id


async def _send_many(device: Device, to: User, count: int, prefix: str) -> list[dict[str, Any]]:
    return [(await device.send_text(to.id, f"{prefix}{i}", f"{prefix}{i}"))["message"] for i in range(count)]


async def _sync(device: Device, cursors: dict[str, int], limit: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "sync", "cursors": cursors}
    if limit is not None:
        frame["limit"] = limit
    return await device.request(frame, "sync.result")


async def test_an_offline_user_catches_up_by_sync(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    a = await chat.connect(alice)
    c = await chat.connect(carol)
    to_bob = await _send_many(a, bob, 5, "a")  # bob is offline throughout
    from_carol = await _send_many(c, bob, 3, "c")
    with_alice, with_carol = direct_id(alice, bob), direct_id(bob, carol)

    b = await chat.connect(bob)
    await b.nothing_pending()  # nothing is pushed on connect: the device asks

    # no cursors: everything, each conversation from seq 0, in seq order per conversation
    result = await _sync(b, {})
    assert result["more"] is False
    got = result["messages"]
    assert sorted(m["id"] for m in got) == sorted(m["id"] for m in to_bob + from_carol)
    assert [m for m in got if m["conversation_id"] == with_alice] == to_bob
    assert [m for m in got if m["conversation_id"] == with_carol] == from_carol

    # a cursor per conversation: only what follows it; a conversation left out starts at 0
    result = await _sync(b, {with_alice: 3})
    assert [m for m in result["messages"] if m["conversation_id"] == with_alice] == to_bob[3:]
    assert [m for m in result["messages"] if m["conversation_id"] == with_carol] == from_carol
    result = await _sync(b, {with_alice: 5, with_carol: 3})
    assert result == {"type": "sync.result", "id": result["id"], "messages": [], "more": False}

    # a cursor for a conversation of mine that has no messages yet is fine
    dave = await chat.user("dave")
    result = await _sync(b, {direct_id(bob, dave): 0, with_alice: 5, with_carol: 3})
    assert result["messages"] == [] and result["more"] is False


async def test_sync_pages_with_limit_and_more_without_gaps(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    a, c = await chat.connect(alice), await chat.connect(carol)
    sent = await _send_many(a, bob, 7, "a") + await _send_many(c, bob, 4, "c")
    b = await chat.connect(bob)

    cursors: dict[str, int] = {}
    pages = []
    while True:
        result = await _sync(b, cursors, limit=3)
        assert len(result["messages"]) <= 3
        pages.append(result["messages"])
        for m in result["messages"]:
            # in order and without gaps per conversation
            assert m["seq"] == cursors.get(m["conversation_id"], 0) + 1, (m, cursors)
            cursors[m["conversation_id"]] = m["seq"]
        if not result["more"]:
            break
        assert result["messages"], "more with an empty page"
    got = [m for page in pages for m in page]
    assert sorted(m["id"] for m in got) == sorted(m["id"] for m in sent)
    assert len(got) == 11
    assert cursors == {direct_id(alice, bob): 7, direct_id(bob, carol): 4}
    assert len(pages) <= 5

    # a limit exactly the number of messages left says there is no more
    result = await _sync(b, {direct_id(alice, bob): 4, direct_id(bob, carol): 4}, limit=3)
    assert [m["seq"] for m in result["messages"]] == [5, 6, 7]
    assert result["more"] is False


async def test_sync_limits_and_foreign_cursors(chat: Chat) -> None:
    alice, bob, carol = await chat.user("alice"), await chat.user("bob"), await chat.user("carol")
    a = await chat.connect(alice)
    await a.send_text(bob.id, "hi", "m1")
    c = await chat.connect(carol)

    for frame_id, limit in (("l0", 0), ("l1001", 1001)):
        await c.send({"type": "sync", "id": frame_id, "cursors": {}, "limit": limit})
        assert_error(await c.recv(), "validation_failed", frame_id, "limit")
    await c.send({"type": "sync", "id": "big", "cursors": {}, "limit": 1000})
    assert (await c.expect("sync.result"))["messages"] == []

    # another user's conversation, or a malformed one, as a cursor: not_found, nothing leaks
    await c.send({"type": "sync", "id": "x", "cursors": {direct_id(alice, bob): 0}})
    assert_error(await c.recv(), "not_found", "x")
    await c.send({"type": "sync", "id": "y", "cursors": {"nonsense": 0}})
    assert_error(await c.recv(), "not_found", "y")
    await c.send({"type": "sync", "id": "z", "cursors": {direct_id(alice, bob): "zero"}})
    assert_error(await c.recv(), "validation_failed", "z")
    await c.nothing_pending()


async def test_unacked_messages_are_pushed_again_after_the_ack_timeout(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    sent = await _send_many(a, bob, 3, "m")
    assert [f["message"] for f in await b.barrier()] == sent

    # not yet overdue
    chat.clock.advance(9)
    await chat.service.resend_overdue()
    await b.nothing_pending()

    chat.clock.advance(1.5)
    await chat.service.resend_overdue()
    assert [f["message"] for f in await b.barrier()] == sent

    # once more after another full timeout, and not before
    await chat.service.resend_overdue()
    await b.nothing_pending()
    chat.clock.advance(10.5)
    await chat.service.resend_overdue()
    assert [f["message"] for f in await b.barrier()] == sent

    # the sender's own socket is not waiting for acks of what it sent
    await a.nothing_pending()


async def test_a_cumulative_ack_stops_the_re_sends(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a = await chat.connect(alice)
    b_laptop, b_phone = await chat.connect(bob), await chat.connect(bob, "phone")
    cid = direct_id(alice, bob)
    sent = await _send_many(a, bob, 4, "m")
    for device in (b_laptop, b_phone):
        assert [f["message"] for f in await device.barrier()] == sent

    await b_laptop.send({"type": "ack", "conversation_id": cid, "seq": 4})  # everything
    await b_phone.send({"type": "ack", "conversation_id": cid, "seq": 2})  # the first two
    await b_laptop.nothing_pending()  # an ack has no reply (and is processed before the ping)
    await b_phone.nothing_pending()

    chat.clock.advance(11)
    await chat.service.resend_overdue()
    await b_laptop.nothing_pending()
    assert [f["message"] for f in await b_phone.barrier()] == sent[2:]

    await b_phone.send({"type": "ack", "conversation_id": cid, "seq": 4})
    await b_phone.nothing_pending()  # the ack is handled once the pong comes back
    chat.clock.advance(11)
    await chat.service.resend_overdue()
    await b_phone.nothing_pending()

    # a new message after the ack is tracked afresh
    newer = (await a.send_text(bob.id, "later", "m-later"))["message"]
    assert (await b_laptop.expect("message"))["message"] == newer
    chat.clock.advance(11)
    await chat.service.resend_overdue()
    assert [f["message"] for f in await b_laptop.barrier()] == [newer]


async def test_the_senders_other_devices_ack_too(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a_laptop, a_phone = await chat.connect(alice), await chat.connect(alice, "phone")
    sent = await _send_many(a_laptop, bob, 2, "m")
    assert [f["message"] for f in await a_phone.barrier()] == sent
    chat.clock.advance(11)
    await chat.service.resend_overdue()
    assert [f["message"] for f in await a_phone.barrier()] == sent
    await a_phone.send({"type": "ack", "conversation_id": direct_id(alice, bob), "seq": 2})
    await a_phone.nothing_pending()
    chat.clock.advance(11)
    await chat.service.resend_overdue()
    await a_phone.nothing_pending()
    await a_laptop.nothing_pending()
