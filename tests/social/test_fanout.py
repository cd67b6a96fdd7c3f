"""Group fan-out end to end over real WebSockets: a 200-member group.

Every online device gets each message exactly once and in seq order (its own sends come back
as `sent` on the sending socket, and as `message` on the sender's other devices); a member
that was offline catches up by `sync`, system messages included; kicked and departed members
receive nothing more and read nothing past their leaving; a member added back reads on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import Device, Person, World, gcid

MEMBERS = 200


async def messages(device: Device, count: int) -> list[dict[str, Any]]:
    """The next `count` frames, all of which must be `message` frames."""
    frames = [await device.expect("message") for _ in range(count)]
    return [f["message"] for f in frames]


def text_frame(gid: str, cmid: str, words: str) -> dict[str, Any]:
    return {"type": "send", "group_id": gid, "client_msg_id": cmid, "kind": "text", "body": {"text": words}}


async def send(device: Device, gid: str, *texts: tuple[str, str]) -> list[dict[str, Any]]:
    """Send (client_msg_id, text) pairs in one go; the stored messages from their `sent`."""
    replies = await device.requests([text_frame(gid, cmid, words) for cmid, words in texts])
    assert all(r["type"] == "sent" for r in replies), replies
    return [r["message"] for r in replies]


def seqs(items: list[dict[str, Any]]) -> list[int]:
    return [int(m["seq"]) for m in items]


async def sync(device: Device, cursors: dict[str, int]) -> list[dict[str, Any]]:
    reply = await device.request({"type": "sync", "cursors": cursors})
    assert reply["type"] == "sync.result" and reply["more"] is False, reply
    return reply["messages"]  # type: ignore[no-any-return]


async def history(person: Person, cid: str, **query: int) -> list[dict[str, Any]]:
    params = "&".join(f"{k}={v}" for k, v in {"limit": 200, **query}.items())
    status, body = await person.call("GET", f"/api/v1/conversations/{cid}/messages?{params}")
    assert status == 200, body
    return body["items"]  # type: ignore[no-any-return]


async def test_two_hundred_members_get_each_message_once_in_order(make_world: Any) -> None:
    world: World = await make_world(chat={"max_sockets_per_ip": 0})  # 201 sockets, all from 127.0.0.1
    people = await world.people(*(f"user{i:03}" for i in range(MEMBERS)))
    owner, offline, kicked, leaver, twin = people[:5]
    others = people[5:]
    gid = await world.group(owner, people[1:])
    cid = gcid(gid)
    online = [p for p in people if p is not offline]
    await asyncio.gather(*(world.connect(p) for p in online))
    second = await world.connect(twin, "second")  # the twin's other device
    senders = [owner, twin, others[0]]

    # Three senders, two messages each, all in flight at once: seqs interleave.
    batches = await asyncio.gather(*(send(p.devices[0], gid, *((f"{p.username}-{n}", f"hello {n}") for n in range(2)))
                                     for p in senders))
    sent = [m for batch in batches for m in batch]
    assert sorted(seqs(sent)) == list(range(2, 8))  # seq 1 is group.created
    own: dict[str, set[int]] = {}
    for message in sent:
        own.setdefault(message["sender_id"], set()).add(int(message["seq"]))

    async def check(person: Person, device: Device, skip: set[int]) -> None:
        expected = [s for s in range(2, 8) if s not in skip]
        got = await messages(device, len(expected))
        assert seqs(got) == expected, (person.username, seqs(got))
        assert await device.barrier() == [], person.username  # nothing twice

    await asyncio.gather(*(check(p, p.devices[0], own.get(p.id, set())) for p in online),
                         check(twin, second, set()))

    # A burst from one member while the owner kicks another and a third leaves: whatever is
    # stored after a member's removal never reaches it.
    burster = others[1]
    burst = asyncio.ensure_future(send(burster.devices[0], gid, *((f"burst-{n}", f"burst {n}") for n in range(10))))
    status, _ = await owner.call("DELETE", f"/api/v1/groups/{gid}/members/{kicked.id}")
    assert status == 204
    status, _ = await leaver.call("DELETE", f"/api/v1/groups/{gid}/members/{leaver.id}")
    assert status == 204
    burst_seqs = set(seqs(await burst))
    status, _ = await owner.call("PATCH", f"/api/v1/groups/{gid}", {"name": "renamed"})
    assert status == 200
    [after] = await send(owner.devices[0], gid, ("after-kick", "said after they left"))
    last = int(after["seq"])
    assert last == 7 + 10 + 3 + 1

    for gone, event in ((kicked, "group.member_removed"), (leaver, "group.member_left")):
        frames = await gone.devices[0].barrier()
        got = [f["message"] for f in frames]
        removal = [m for m in got if m["kind"] == "system" and m["body"]["event"] == event]
        assert len(removal) == 1, (gone.username, got)
        until = int(removal[0]["seq"])
        assert removal[0]["body"]["target_ids"] == [gone.id]
        assert seqs(got) == sorted(seqs(got)) and max(seqs(got)) == until, \
            f"{gone.username} received messages after leaving at {until}: {seqs(got)}"
        # History and sync stop at the leaving, whatever is asked.
        assert max(seqs(await history(gone, cid))) == until
        assert await history(gone, cid, after_seq=until) == []
        assert seqs(await history(gone, cid, before_seq=last + 1)) == list(range(1, until + 1))
        assert seqs(await sync(gone.devices[0], {cid: 0})) == list(range(1, until + 1))
        assert seqs(await sync(gone.devices[0], {})) == list(range(1, until + 1))
        assert await sync(gone.devices[0], {cid: until}) == []
        status, body = await gone.call("POST", f"/api/v1/conversations/{cid}/messages",
                                       {"client_msg_id": "late", "kind": "text", "body": {"text": "hi?"}})
        assert status == 403, body

    # Everyone still in the group got everything from seq 8 on exactly once, in order, but
    # for what it sent itself from that socket (answered by `sent`).
    async def check_rest(person: Person) -> None:
        frames = await person.devices[0].barrier()
        assert all(f["type"] == "message" for f in frames), frames
        skip = burst_seqs if person is burster else {last} if person is owner else set()
        expected = [s for s in range(8, last + 1) if s not in skip]
        assert seqs([f["message"] for f in frames]) == expected, (person.username, seqs(frames))

    await asyncio.gather(*(check_rest(p) for p in online if p not in (kicked, leaver)))

    # The member that was offline all along catches up by sync: every message, the system
    # messages of the creation, the kick, the departure and the rename included.
    device = await world.connect(offline)
    caught = await sync(device, {})
    assert seqs(caught) == list(range(1, last + 1))
    events = [m["body"]["event"] for m in caught if m["kind"] == "system"]
    assert events == ["group.created", "group.member_removed", "group.member_left", "group.renamed"]
    assert caught[0]["body"]["target_ids"] == [p.id for p in people[1:]]
    await device.nothing_pending()

    # The kicked member is added back: it hears of it, receives again, and reads on.
    status, body = await owner.call("POST", f"/api/v1/groups/{gid}/members", {"user_ids": [kicked.id]})
    assert status == 201, body
    added = (await kicked.devices[0].expect("message"))["message"]
    assert added["body"]["event"] == "group.member_added" and added["body"]["target_ids"] == [kicked.id]
    [again] = await send(owner.devices[0], gid, ("welcome-back", "welcome back"))
    assert seqs(await messages(kicked.devices[0], 1)) == [int(again["seq"])] == [int(added["seq"]) + 1]
    # Contract silent: a member added back reads the whole history again, what was said while
    # it was away included (a new member, too, reads a group's history from its start).
    assert seqs(await history(kicked, cid)) == list(range(1, int(again["seq"]) + 1))
    assert seqs(await sync(kicked.devices[0], {cid: until_of(caught, kicked)})) == \
        list(range(until_of(caught, kicked) + 1, int(again["seq"]) + 1))
    # The one who left is still outside, and hears nothing.
    await leaver.devices[0].nothing_pending()


def until_of(caught: list[dict[str, Any]], person: Person) -> int:
    """The seq of the (last) message that removed `person`."""
    return [int(m["seq"]) for m in caught if m["kind"] == "system"
            and m["body"]["event"] == "group.member_removed" and m["body"]["target_ids"] == [person.id]][-1]


async def test_membership_changes_take_effect_at_their_seq_under_load(make_world: Any) -> None:
    """Sends racing a kick or an add: the fan-out follows the membership at each message's seq.

    Messages stored in the same batch as the removal, or just after it, never reach the
    removed member; those stored after an addition all reach the new member.
    """
    world = await make_world(chat={"send_rate_per_s": 10_000, "send_burst": 10_000})
    people = await world.people(*(f"user{i}" for i in range(8)))
    owner, target, *senders = people
    gid = await world.group(owner, [target, *senders])
    cid = gcid(gid)
    device = await world.connect(target)

    async def burst(tag: str, change: Any) -> None:
        calls = [p.call("POST", f"/api/v1/conversations/{cid}/messages", text_body(f"{tag}-{n}"))
                 for n in range(5) for p in senders]
        answers = await asyncio.gather(*calls[:15], change, *calls[15:])
        assert all(status in (201, 204) for status, _ in answers), answers

    for round_ in range(4):
        await burst(f"kick{round_}", owner.call("DELETE", f"/api/v1/groups/{gid}/members/{target.id}"))
        got = [f["message"] for f in await device.barrier()]
        until = until_of(got, target)
        assert max(seqs(got)) == until, f"round {round_}: pushed after the removal at {until}: {seqs(got)}"

        await burst(f"add{round_}", owner.call("POST", f"/api/v1/groups/{gid}/members", {"user_ids": [target.id]}))
        got = [f["message"] for f in await device.barrier()]
        added = next(int(m["seq"]) for m in got if m["kind"] == "system" and m["body"]["event"] == "group.member_added")
        last = max(seqs(await history(owner, cid)))
        assert seqs(got) == list(range(added, last + 1)), f"round {round_}: added at {added}: {seqs(got)}"


def text_body(cmid: str) -> dict[str, Any]:
    return {"client_msg_id": cmid, "kind": "text", "body": {"text": cmid}}
