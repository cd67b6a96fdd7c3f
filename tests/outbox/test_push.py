"""Offline push (PROTOCOL.md, "Offline push") against a real receiver on loopback, on SQLite
and PostgreSQL: who is notified, what the notification holds, how it is signed, and that
failed attempts are retried with the same delivery_id and bytes until one is taken.

The first attempt leaves right after the commit (the push sender); later ones are the
`outbox.retry` job's, run here by calling it after moving the fake clock past the backoff.
"""

from __future__ import annotations

from typing import Any

from lucky_server.core import Core
from lucky_server.keys import CORE

from ..chat.conftest import Chat, MakeChat, User, direct_id
from .conftest import push_section
from .receiver import Receiver

LATER_S = 3600  # past any backoff


def core_of(chat: Chat) -> Core:
    core: Core = chat.client.server.app[CORE]
    return core


async def statuses(chat: Chat) -> dict[str, tuple[int, int]]:
    return {s.kind: (s.pending, s.failed) for s in await core_of(chat).outbox.status()}


async def run_job_later(chat: Chat) -> str:
    """Move past every backoff and run the outbox job, as the scheduler would.

    A round of the push sender still in flight (woken by a commit) ends first, so that it
    records its outcome at the time it ran, not at the later one.
    """
    await core_of(chat).outbox.deliveries.send_due()
    chat.clock.advance(LATER_S)
    return await core_of(chat).outbox.run_job()


async def make_group(owner: User, members: list[User], name: str = "team") -> str:
    status, body = await owner.api.call("POST", "/api/v1/groups",
                                        {"name": name, "member_ids": [m.id for m in members]})
    assert status == 201, body
    return str(body["id"])


async def send_group(device: Any, gid: str, cmid: str, body: dict[str, Any], kind: str = "text") -> dict[str, Any]:
    sent: dict[str, Any] = await device.request({"type": "send", "group_id": gid, "client_msg_id": cmid,
                                                 "kind": kind, "body": body}, "sent")
    return sent


async def test_a_failed_push_is_retried_with_the_same_bytes_until_taken_once(push_chat: Chat,
                                                                             receiver: Receiver) -> None:
    receiver.script.extend(["500", "hang"])  # then 200
    alice, bob = await push_chat.user("alice"), await push_chat.user("bob")  # bob has no device
    sent = await (await push_chat.connect(alice)).send_text(bob.id, "see you at noon", "c1")

    first = (await receiver.wait_hits(1))[0]  # sent right after the commit: no job needed
    assert first.answer == "500"
    assert await statuses(push_chat) == {"message": (0, 0), "push": (1, 0)}
    await run_job_later(push_chat)  # the gateway hangs past push.timeout_s: a failure too
    assert await statuses(push_chat) == {"message": (0, 0), "push": (1, 0)}
    assert "sent 1 notification" in await run_job_later(push_chat)
    assert await run_job_later(push_chat) == "dispatched 0 message(s); sent 0 notification(s)"

    hits = receiver.hits
    assert [h.answer for h in hits] == ["500", "hang", "200"]
    assert len({h.body for h in hits}) == 1, "every attempt posts the same bytes"
    assert all(h.signed for h in hits)
    assert all(h.headers["Content-Type"] == "application/json" for h in hits)
    note = hits[0].json
    message = sent["message"]
    assert note == {
        "event": "message", "delivery_id": note["delivery_id"], "user_id": bob.id,
        "conversation_id": direct_id(alice, bob), "message_id": message["id"], "seq": 1,
        "sender": {"id": alice.id, "username": "alice", "display_name": alice.api.user["display_name"],
                   "avatar_url": None, "created_at": alice.api.user["created_at"]},
        "kind": "text", "unread": 1, "created_at": message["created_at"],
    }
    assert isinstance(note["delivery_id"], str) and note["delivery_id"].isdigit()
    assert await statuses(push_chat) == {"message": (0, 0), "push": (0, 0)}


async def test_unread_counts_what_the_recipient_has_not_read(push_chat: Chat, receiver: Receiver) -> None:
    alice, bob = await push_chat.user("alice"), await push_chat.user("bob")
    device = await push_chat.connect(alice)
    for n in range(3):
        await device.send_text(bob.id, f"message {n}", f"c{n}")
    status, _ = await bob.api.call("POST", f"/api/v1/conversations/{direct_id(alice, bob)}/read", {"seq": 2})
    assert status in (200, 204)
    assert (await device.recv())["type"] == "receipt"
    await device.send_text(bob.id, "and one more", "c3")
    await core_of(push_chat).outbox.run_job()
    hits = await receiver.wait_hits(4)
    assert sorted((h.json["seq"], h.json["unread"]) for h in hits) == [(1, 1), (2, 2), (3, 3), (4, 2)]
    assert len({h.json["delivery_id"] for h in hits}) == 4


async def test_online_recipients_get_no_push_and_a_muted_one_only_when_mentioned(push_chat: Chat,
                                                                               receiver: Receiver) -> None:
    alice, bob, carol, dave = [await push_chat.user(n) for n in ("alice", "bob", "carol", "dave")]
    gid = await make_group(alice, [bob, carol, dave])
    status, _ = await carol.api.call("PATCH", f"/api/v1/conversations/g:{gid}", {"muted": True})
    assert status == 200
    sender = await push_chat.connect(alice)
    await push_chat.connect(bob)  # online: the message reaches bob's device, no push

    await send_group(sender, gid, "m1", {"text": "lunch?"})
    await send_group(sender, gid, "m2", {"text": "carol, lunch?", "mentions": [carol.id]})
    await core_of(push_chat).outbox.run_job()  # any notification still due goes now
    got = sorted((h.json["seq"], h.json["user_id"]) for h in receiver.hits)
    # seq 1 is group.created (system: no push); 2 and 3 are the texts
    assert got == sorted([(2, dave.id), (3, carol.id), (3, dave.id)])
    assert {h.answer for h in receiver.hits} == {"200"}


async def test_mention_all_reaches_a_muted_member(push_chat: Chat, receiver: Receiver) -> None:
    alice, bob = await push_chat.user("alice"), await push_chat.user("bob")
    gid = await make_group(alice, [bob])
    await bob.api.call("PATCH", f"/api/v1/conversations/g:{gid}", {"muted": True})
    sender = await push_chat.connect(alice)
    await send_group(sender, gid, "m1", {"text": "quiet"})
    await send_group(sender, gid, "m2", {"text": "everyone!", "mention_all": True})
    await core_of(push_chat).outbox.run_job()
    assert [(h.json["seq"], h.json["user_id"]) for h in receiver.hits] == [(3, bob.id)]


async def test_preview_only_with_include_preview_and_only_for_text(make_chat: MakeChat, receiver: Receiver) -> None:
    chat = await make_chat(push=push_section(receiver, include_preview=True))
    alice, bob = await chat.user("alice"), await chat.user("bob")
    device = await chat.connect(alice)
    long_text = "é" * 60 + "x" * 90
    await device.send_text(bob.id, long_text, "c1")
    await device.request({"type": "send", "to": bob.id, "client_msg_id": "c2", "kind": "location",
                          "body": {"lat": 1.5, "lng": 2.5}}, "sent")
    await core_of(chat).outbox.run_job()
    notes = sorted((h.json for h in await receiver.wait_hits(2)), key=lambda n: n["seq"])
    assert notes[0]["preview"] == long_text[:100]
    assert notes[1]["kind"] == "location" and "preview" not in notes[1]


async def test_no_push_without_a_webhook_url(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    await (await chat.connect(alice)).send_text(bob.id, "hello", "c1")
    rows = await core_of(chat).db.fetch_all("SELECT id FROM deliveries")
    assert rows == []


async def test_a_stopped_receiver_leaves_rows_pending_and_the_job_delivers_them_later(
        push_chat: Chat, receiver: Receiver) -> None:
    await receiver.stop()
    alice, bob = await push_chat.user("alice"), await push_chat.user("bob")
    device = await push_chat.connect(alice)
    for n in range(3):
        await device.send_text(bob.id, f"message {n}", f"c{n}")
    await core_of(push_chat).outbox.run_job()  # refused: each attempt fails
    assert await statuses(push_chat) == {"message": (0, 0), "push": (3, 0)}
    assert receiver.hits == []

    push_chat.clock.advance(2)  # less than any backoff: nothing comes due
    async with push_chat.client.get("/metrics") as resp:
        assert 'lucky_outbox_oldest_pending_seconds{kind="push"} 2.0' in await resp.text()
    await receiver.start()  # the same port again
    assert "sent 3 notification" in await run_job_later(push_chat)
    assert sorted(h.json["seq"] for h in receiver.taken) == [1, 2, 3]
    assert len({h.json["delivery_id"] for h in receiver.taken}) == 3
    assert await statuses(push_chat) == {"message": (0, 0), "push": (0, 0)}


async def test_max_attempts_marks_failed_and_retry_failed_delivers(make_chat: MakeChat, receiver: Receiver) -> None:
    chat = await make_chat(push=push_section(receiver, max_attempts=2))
    receiver.then = "500"
    alice, bob = await chat.user("alice"), await chat.user("bob")
    await (await chat.connect(alice)).send_text(bob.id, "hello", "c1")
    await receiver.wait_hits(1)
    assert "1 failed" in await run_job_later(chat)
    assert await statuses(chat) == {"message": (0, 0), "push": (0, 1)}
    await run_job_later(chat)
    assert len(receiver.hits) == 2, "a failed row is not tried again"
    async with chat.client.get("/metrics") as resp:
        metrics = await resp.text()
    assert 'lucky_outbox_rows{kind="push",state="failed"} 1.0' in metrics
    assert 'lucky_outbox_rows{kind="message",state="pending"} 0.0' in metrics
    assert 'lucky_outbox_oldest_pending_seconds{kind="push"} 0.0' in metrics

    receiver.then = "200"
    assert await core_of(chat).outbox.retry(failed=True) == {"message": 0, "push": 1}
    assert await statuses(chat) == {"message": (0, 0), "push": (1, 0)}
    await core_of(chat).outbox.run_job()
    assert [h.answer for h in receiver.hits] == ["500", "500", "200"]
    assert len({h.body for h in receiver.hits}) == 1
    assert await statuses(chat) == {"message": (0, 0), "push": (0, 0)}


async def test_system_messages_push_nothing(push_chat: Chat, receiver: Receiver) -> None:
    alice, bob = await push_chat.user("alice"), await push_chat.user("bob")
    gid = await make_group(alice, [bob])
    status, _ = await alice.api.call("PATCH", f"/api/v1/groups/{gid}", {"name": "renamed"})
    assert status == 200
    await core_of(push_chat).outbox.run_job()
    assert receiver.hits == []
    rows = await core_of(push_chat).db.fetch_all("SELECT id FROM deliveries")
    assert rows == []
