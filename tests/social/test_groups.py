"""Group features beyond who may do what: mentions, muting, system messages, avatars, and the
conversation list with groups in it."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from .conftest import MakeWorld, Person, World, gcid, text


async def post(person: Person, cid: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await person.call("POST", f"/api/v1/conversations/{cid}/messages", body)


async def conversation(person: Person, cid: str) -> dict[str, Any]:
    status, body = await person.call("GET", "/api/v1/conversations")
    assert status == 200, body
    return next(item for item in body["items"] if item["conversation_id"] == cid)


async def test_mentions_are_checked_and_flag_the_conversation_even_when_muted(world: World) -> None:
    owner, admin, member, outsider = await world.people("owner", "admin", "member", "outsider")
    gid = await world.group(owner, [admin, member])
    cid = gcid(gid)
    status, _ = await owner.call("PATCH", f"/api/v1/groups/{gid}/members/{admin.id}", {"role": "admin"})
    assert status == 200

    # Only members can be mentioned, and only the owner and admins may mention everyone.
    status, body = await post(member, cid, text("m1", "hey", mentions=[outsider.id]))
    assert (status, body["error"]["code"], body["error"]["details"]["field"]) == (422, "validation_failed",
                                                                                  "body.mentions")
    device = await world.connect(member)
    reply = await device.request({"type": "send", "group_id": gid, "client_msg_id": "m2", "kind": "text",
                                  "body": {"text": "all", "mention_all": True}})
    assert (reply["type"], reply["code"]) == ("error", "forbidden")
    status, body = await post(member, cid, text("m3", "hey all", mention_all=True))
    assert (status, body["error"]["code"]) == (403, "forbidden")

    # The member mutes the group; a mention still flags it (and still reaches its device).
    status, _ = await member.call("PATCH", f"/api/v1/conversations/{cid}", {"muted": True})
    assert status == 200
    status, mention = await post(owner, cid, text("o1", "look here", mentions=[member.id]))
    assert status == 201, mention
    assert mention["body"]["mentions"] == [member.id]
    pushed = await device.expect("message")
    assert pushed["message"]["id"] == mention["id"]
    item = await conversation(member, cid)
    # System messages count as unread too: the creation and the role change come first.
    assert (item["muted"], item["mentioned"], item["unread"]) == (True, True, mention["seq"])
    assert (await conversation(admin, cid))["mentioned"] is False

    # Later messages leave the flag on until the member reads past the mention.
    status, later = await post(admin, cid, text("a1", "unrelated"))
    assert status == 201
    status, _ = await member.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": mention["seq"] - 1})
    assert status == 204
    assert (await conversation(member, cid))["mentioned"] is True
    status, _ = await member.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": mention["seq"]})
    assert status == 204
    item = await conversation(member, cid)
    assert (item["mentioned"], item["unread"]) == (False, 1)

    # mention_all by an admin flags every other member, the owner included, not the sender.
    status, everyone = await post(admin, cid, text("a2", "meeting", mention_all=True))
    assert status == 201 and everyone["body"]["mention_all"] is True
    assert (await conversation(member, cid))["mentioned"] is True
    assert (await conversation(owner, cid))["mentioned"] is True
    assert (await conversation(admin, cid))["mentioned"] is False
    status, _ = await member.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": everyone["seq"]})
    assert (await conversation(member, cid))["mentioned"] is False

    # A member who left can no longer be mentioned.
    status, _ = await member.call("DELETE", f"/api/v1/groups/{gid}/members/{member.id}")
    assert status == 204
    status, body = await post(owner, cid, text("o2", "still there?", mentions=[member.id]))
    assert status == 422, body


async def test_muting_members_and_everyone(world: World) -> None:
    owner, admin, member = await world.people("owner", "admin", "member")
    gid = await world.group(owner, [admin, member])
    cid, base = gcid(gid), f"/api/v1/groups/{gid}"
    status, _ = await owner.call("PATCH", f"{base}/members/{admin.id}", {"role": "admin"})
    assert status == 200

    until = world.clock.now_ms() + 60_000
    status, muted = await admin.call("PATCH", f"{base}/members/{member.id}", {"muted_until": until})
    assert (status, muted["muted_until"], muted["role"]) == (200, until, "member")
    status, body = await post(member, cid, text("1", "can I?"))
    assert (status, body["error"]["code"]) == (403, "forbidden")
    world.clock.advance(61)  # the mute runs out by itself
    status, _ = await post(member, cid, text("2", "free again"))
    assert status == 201
    status, _ = await admin.call("PATCH", f"{base}/members/{member.id}", {"muted_until": until + 10**9})
    status, cleared = await admin.call("PATCH", f"{base}/members/{member.id}", {"muted_until": None})
    assert (status, cleared["muted_until"]) == (200, None)
    status, _ = await post(member, cid, text("3", "unmuted"))
    assert status == 201

    status, group = await admin.call("PATCH", base, {"muted_all": True})
    assert (status, group["muted_all"]) == (200, True)
    assert (await post(member, cid, text("4", "muted all")))[0] == 403
    assert (await post(admin, cid, text("5", "admins speak")))[0] == 201
    assert (await post(owner, cid, text("6", "owner speaks")))[0] == 201
    status, group = await owner.call("PATCH", base, {"muted_all": False})
    assert (await post(member, cid, text("7", "back")))[0] == 201

    status, history = await owner.call("GET", f"/api/v1/conversations/{cid}/messages")
    events = [(m["body"]["event"], m["body"].get("muted_until", m["body"].get("muted_all")))
              for m in history["items"] if m["kind"] == "system" and m["body"]["event"] == "group.muted"]
    assert events == [("group.muted", until), ("group.muted", until + 10**9), ("group.muted", None),
                      ("group.muted", True), ("group.muted", False)]


async def test_every_change_is_a_system_message(world: World) -> None:
    owner, admin, member, joiner, invitee = await world.people("owner", "admin", "member", "joiner", "invitee")
    gid = await world.group(owner, [admin, member], name="first")
    cid, base = gcid(gid), f"/api/v1/groups/{gid}"
    calls = [
        (owner, "PATCH", f"{base}/members/{admin.id}", {"role": "admin"}),
        (owner, "PATCH", base, {"name": "second", "announcement": "hello"}),
        (admin, "POST", f"{base}/members", {"user_ids": [invitee.id]}),
        (joiner, "POST", f"{base}/join", {}),
        (admin, "DELETE", f"{base}/members/{member.id}", None),
        (invitee, "DELETE", f"{base}/members/{invitee.id}", None),
        (owner, "POST", f"{base}/transfer", {"user_id": admin.id}),
        (admin, "DELETE", base, None),
    ]
    for who, method, path, body in calls:
        status, answer = await who.call(method, path, body)
        assert status < 300, (path, answer)
    status, history = await owner.call("GET", f"/api/v1/conversations/{cid}/messages")
    system = [(m["seq"], m["sender_id"], m["body"]["event"], m["body"].get("target_ids")) for m in history["items"]]
    assert system == [
        (1, owner.id, "group.created", [admin.id, member.id]),
        (2, owner.id, "group.role_changed", [admin.id]),
        (3, owner.id, "group.renamed", None),
        (4, owner.id, "group.announcement", None),
        (5, admin.id, "group.member_added", [invitee.id]),
        (6, joiner.id, "group.member_added", [joiner.id]),
        (7, admin.id, "group.member_removed", [member.id]),
        (8, invitee.id, "group.member_left", [invitee.id]),
        (9, owner.id, "group.owner_changed", [admin.id]),
        (10, admin.id, "group.dismissed", None),
    ]
    assert all(m["kind"] == "system" and m["body"]["actor_id"] == m["sender_id"] for m in history["items"])
    status, group = await member.call("GET", base)
    assert (group["name"], group["announcement"], group["owner_id"], group["dismissed"]) == \
        ("second", "hello", admin.id, True)
    status, members = await owner.call("GET", f"{base}/members")
    assert {m["user"]["id"]: m["role"] for m in members["items"]} == \
        {owner.id: "admin", admin.id: "owner", joiner.id: "member"}


async def test_join_by_request(world: World) -> None:
    owner, joiner = await world.people("owner", "joiner")
    gid = await world.group(owner, [], join_policy="approval")
    base = f"/api/v1/groups/{gid}"
    status, request = await joiner.call("POST", f"{base}/join", {"message": "let me in"})
    assert status == 202 and request["state"] == "pending" and request["user"]["id"] == joiner.id
    status, again = await joiner.call("POST", f"{base}/join", {})
    assert (status, again["id"]) == (202, request["id"])
    status, listed = await owner.call("GET", f"{base}/requests")
    assert [(r["id"], r["message"]) for r in listed["items"]] == [(request["id"], "let me in")]
    status, answer = await owner.call("POST", f"{base}/requests/{request['id']}/accept")
    assert (status, answer["state"]) == (200, "accepted")
    status, members = await joiner.call("GET", f"{base}/members")
    assert status == 200 and joiner.id in [m["user"]["id"] for m in members["items"]]
    status, body = await owner.call("POST", f"{base}/requests/{request['id']}/reject")
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert (await owner.call("GET", f"{base}/requests"))[1]["items"] == []
    status, body = await owner.call("POST", f"{base}/requests/12345/accept")
    assert status == 404


async def test_member_limit(make_world: MakeWorld) -> None:
    world = await make_world(chat={"max_group_members": 3})
    owner, a, b, c = await world.people("owner", "usera", "userb", "userc")
    status, body = await owner.call("POST", "/api/v1/groups", {"name": "big", "member_ids": [a.id, b.id, c.id]})
    assert (status, body["error"]["code"]) == (422, "validation_failed")
    gid = await world.group(owner, [a, b])
    status, body = await owner.call("POST", f"/api/v1/groups/{gid}/members", {"user_ids": [c.id]})
    assert (status, body["error"]["code"]) == (409, "conflict")
    status, body = await c.call("POST", f"/api/v1/groups/{gid}/join", {})
    assert (status, body["error"]["code"]) == (409, "conflict")


async def avatar(person: Person, gid: str, etag: str | None = None) -> tuple[int, bytes, str]:
    headers = {**person.api.headers(), **({"If-None-Match": etag} if etag else {})}
    async with person.api.client.get(f"/api/v1/groups/{gid}/avatar", headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers.get("ETag", "")


async def test_group_avatar_is_a_png_grid_with_an_etag(world: World) -> None:
    people = await world.people(*(f"member{i:02}" for i in range(12)))
    owner = people[0]
    gid = await world.group(owner, people[1:])
    status, png, etag = await avatar(owner, gid)
    assert status == 200 and etag
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (256, 256)
    status, body, same = await avatar(people[5], gid, etag)
    assert (status, body, same) == (304, b"", etag)

    # Members past the first nine do not change the picture...
    status, _ = await owner.call("DELETE", f"/api/v1/groups/{gid}/members/{people[11].id}")
    assert status == 204
    assert (await avatar(owner, gid, etag))[0] == 304
    # ...one of the first nine does.
    status, _ = await owner.call("DELETE", f"/api/v1/groups/{gid}/members/{people[1].id}")
    assert status == 204
    status, changed, new_etag = await avatar(owner, gid, etag)
    assert status == 200 and new_etag != etag and changed != png
    with Image.open(io.BytesIO(changed)) as image:
        assert image.size == (256, 256)

    # A group of one is a single tile, still 256x256.
    solo = await world.group(owner, [])
    status, png, _ = await avatar(owner, solo)
    with Image.open(io.BytesIO(png)) as image:
        assert (status, image.size) == (200, (256, 256))
    status, _, _ = await avatar(owner, "123456")
    assert status == 404


async def test_conversation_list_covers_groups_newest_first(world: World) -> None:
    me, peer, other = await world.people("myself", "peer", "other")
    g1 = await world.group(other, [me], name="one")
    world.clock.advance(1)
    g2 = await world.group(other, [me, peer], name="two")
    world.clock.advance(1)
    low, high = sorted((me.id, peer.id))
    dm = f"p:{low}:{high}"
    assert (await post(peer, dm, text("d1", "psst")))[0] == 201
    world.clock.advance(1)
    assert (await post(other, gcid(g1), text("g1", "news")))[0] == 201
    world.clock.advance(1)

    status, listing = await me.call("GET", "/api/v1/conversations")
    assert status == 200
    assert [i["conversation_id"] for i in listing["items"]] == [gcid(g1), dm, gcid(g2)]
    first = listing["items"][0]
    assert first["kind"] == "group" and "peer" not in first
    assert (first["group"]["id"], first["group"]["name"], first["group"]["member_count"]) == (g1, "one", 2)
    assert (first["unread"], first["last_seq"], first["read_seq"]) == (2, 2, 0)  # created + news
    assert first["last_message"]["body"]["text"] == "news"
    assert listing["items"][1]["peer"]["id"] == peer.id and "group" not in listing["items"][1]
    assert listing["items"][2]["group"]["name"] == "two" and listing["items"][2]["unread"] == 1

    status, flags = await me.call("PATCH", f"/api/v1/conversations/{gcid(g2)}", {"muted": True, "pinned": True})
    assert (status, flags["muted"], flags["pinned"]) == (200, True, True)
    assert (await post(peer, gcid(g2), text("g2", "hello two")))[0] == 201
    status, listing = await me.call("GET", "/api/v1/conversations?limit=2")
    top = listing["items"][0]
    assert [i["conversation_id"] for i in listing["items"]] == [gcid(g2), gcid(g1)]
    assert (top["muted"], top["pinned"], top["unread"]) == (True, True, 2)
    status, rest = await me.call("GET", f"/api/v1/conversations?limit=2&cursor={listing['next_cursor']}")
    assert [i["conversation_id"] for i in rest["items"]] == [dm] and rest["next_cursor"] is None

    # A group change shows as activity too, and a dismissed group stays listed, flagged.
    world.clock.advance(1)
    status, _ = await other.call("DELETE", f"/api/v1/groups/{g1}")
    assert status == 204
    item = (await me.call("GET", "/api/v1/conversations"))[1]["items"][0]
    assert (item["conversation_id"], item["group"]["dismissed"], item["unread"]) == (gcid(g1), True, 3)
