"""Who may act, and file privacy (issue 9; PROTOCOL.md, "Limits on every input").

Former members and dismissed groups: only current members `send`, `edit`, `recall`, `read`
and `type`, over WebSocket and HTTP; what was said stays as it was. Avatars: using a file as
an avatar makes a new image that everyone may see, and the file stays as private as it was.
Instant uploads: the challenge is never the whole content. Group member lists page; the ids of
one call are capped. Large images still get right thumbnails.

Everything goes through a real server (both databases) with real HTTP and WebSocket clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from PIL import Image

from ..chat.conftest import http_error as error
from ..social.conftest import MakeWorld, Person, World, gcid, make_world, text, world  # noqa: F401

# --- helpers -------------------------------------------------------------------------------


def image_bytes(width: int, height: int, fmt: str = "JPEG", orientation: int | None = None) -> bytes:
    image = Image.new("RGB", (width, height), (200, 40, 40))
    image.paste((20, 40, 200), (0, 0, width // 2, height))  # two halves: not a flat colour
    out = io.BytesIO()
    if orientation is None:
        image.save(out, format=fmt)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        exif[0x010F] = "Holiday Camera"  # Make: metadata an avatar must not carry along
        image.save(out, format=fmt, exif=exif)
    return out.getvalue()


async def upload(person: Person, data: bytes, name: str, mime: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=mime)
    status, body = await person.api.call("POST", "/api/v1/files", data=form)
    assert status == 201, body
    return dict(body)


async def get_bytes(person: Person, path: str) -> tuple[int, bytes]:
    async with person.api.client.get(path, headers=person.api.headers()) as resp:
        return resp.status, await resp.read()


def direct_cid(a: Person, b: Person) -> str:
    low, high = sorted((a.id, b.id))
    return f"p:{low}:{high}"


async def send_file(sender: Person, to: Person, file_id: str) -> None:
    status, body = await sender.call("POST", f"/api/v1/conversations/{direct_cid(sender, to)}/messages",
                                     {"client_msg_id": f"f-{file_id}", "kind": "image", "body": {"file_id": file_id}})
    assert status == 201, body


async def history(person: Person, cid: str) -> dict[str, dict[str, Any]]:
    status, page = await person.call("GET", f"/api/v1/conversations/{cid}/messages?limit=200")
    assert status == 200, page
    return {m["id"]: m for m in page["items"]}


# --- only current members act ----------------------------------------------------------------


async def refused_everything(world: World, person: Person, cid: str, message_id: str) -> None:
    """`edit`, `recall`, `send`, `read`, `typing` over WebSocket, and read and send over HTTP:
    each refused with forbidden, and nobody else hears of any of it."""
    device = await world.connect(person)
    replies = await device.requests([
        {"type": "edit", "message_id": message_id, "body": {"text": "changed my mind"}},
        {"type": "recall", "message_id": message_id},
        {"type": "send", "conversation_id": cid, "client_msg_id": f"late-{person.id}", "kind": "text",
         "body": {"text": "still here?"}},
    ])
    assert [(r["type"], r.get("code")) for r in replies] == [("error", "forbidden")] * 3, replies
    # `read` and `typing` have no reply when they work: their errors come before the pong.
    await device.send({"type": "read", "id": "rd", "conversation_id": cid, "seq": 1})
    await device.send({"type": "typing", "id": "ty", "conversation_id": cid})
    before_pong = await device.barrier()
    assert [(f["type"], f.get("code"), f.get("id")) for f in before_pong] == \
        [("error", "forbidden", "rd"), ("error", "forbidden", "ty")], before_pong
    error(await person.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": 1}), 403, "forbidden")
    error(await person.call("POST", f"/api/v1/conversations/{cid}/messages", text(f"late-http-{person.id}", "hi")),
          403, "forbidden")


@pytest.mark.parametrize("how", ["kicked", "left"])
async def test_a_former_member_no_longer_acts_on_the_group(world: World, how: str) -> None:
    owner, member, former = await world.people("owner", "member", "former")
    gid = await world.group(owner, [member, former])
    cid = gcid(gid)
    status, said = await former.call("POST", f"/api/v1/conversations/{cid}/messages", text("said", "my words"))
    assert status == 201, said
    remover = owner if how == "kicked" else former
    assert (await remover.call("DELETE", f"/api/v1/groups/{gid}/members/{former.id}"))[0] == 204
    watchers = [await world.connect(owner), await world.connect(member)]

    await refused_everything(world, former, cid, said["id"])

    for watcher in watchers:  # no message.updated, receipt or typing reached the members
        await watcher.nothing_pending()
    # Their past message stays as it was, and they still read the history up to their leaving.
    for reader in (owner, former):
        message = (await history(reader, cid))[said["id"]]
        assert message["body"] == {"text": "my words"} and not message.get("recalled"), message
        assert message.get("edited_at") is None, message
    # The members still act.
    status, _ = await member.call("POST", f"/api/v1/conversations/{cid}/read", {"seq": said["seq"]})
    assert status == 204


async def test_a_member_removed_right_after_typing_hears_forbidden_not_silence(world: World) -> None:
    # The typing throttle (one relay per 2 s) must not hide that the member is gone.
    owner, member = await world.people("owner", "member")
    gid = await world.group(owner, [member])
    cid = gcid(gid)
    device, watcher = await world.connect(member), await world.connect(owner)
    await device.send({"type": "typing", "conversation_id": cid})
    assert await device.barrier() == []
    assert [f["type"] for f in await watcher.barrier()] == ["typing"]
    assert (await owner.call("DELETE", f"/api/v1/groups/{gid}/members/{member.id}"))[0] == 204
    await watcher.barrier()  # the system message of the removal
    await device.barrier()
    await device.send({"type": "typing", "id": "again", "conversation_id": cid})
    replies = await device.barrier()
    assert [(f["type"], f.get("code"), f.get("id")) for f in replies] == [("error", "forbidden", "again")], replies
    await watcher.nothing_pending()


async def test_nobody_acts_on_a_dismissed_group(world: World) -> None:
    owner, admin, member = await world.people("owner", "admin", "member")
    gid = await world.group(owner, [admin, member])
    cid = gcid(gid)
    assert (await owner.call("PATCH", f"/api/v1/groups/{gid}/members/{admin.id}", {"role": "admin"}))[0] == 200
    said = {}
    for person in (owner, admin, member):
        status, said[person.id] = await person.call("POST", f"/api/v1/conversations/{cid}/messages",
                                                    text(f"s-{person.id}", f"from {person.username}"))
        assert status == 201
    assert (await owner.call("DELETE", f"/api/v1/groups/{gid}"))[0] == 204

    for person in (owner, admin, member):  # the owner and the admin may no longer moderate either
        await refused_everything(world, person, cid, said[person.id]["id"])
    device = await world.connect(owner)
    reply = await device.request({"type": "recall", "message_id": said[member.id]["id"]})
    assert (reply["type"], reply.get("code")) == ("error", "forbidden"), reply

    messages = await history(member, cid)
    for person in (owner, admin, member):
        message = messages[said[person.id]["id"]]
        assert message["body"] == {"text": f"from {person.username}"} and not message.get("recalled"), message


# --- avatars -------------------------------------------------------------------------------


async def test_a_file_sent_to_you_made_your_avatar_stays_private(world: World) -> None:
    alice, bob, carol = await world.people("alice", "bob", "carol")
    photo = await upload(alice, image_bytes(640, 480, orientation=6), "holiday.jpg", "image/jpeg")
    await send_file(alice, bob, photo["id"])
    assert (await bob.call("GET", f"/api/v1/files/{photo['id']}"))[0] == 200  # sent to him: he reads it

    status, me = await bob.call("PATCH", "/api/v1/me", {"avatar_file_id": photo["id"]})
    assert status == 200, me
    avatar_path = urlsplit(me["avatar_url"]).path
    assert photo["id"] not in avatar_path  # a new image, not the file itself
    status, profile = await carol.call("GET", f"/api/v1/users/{bob.id}")
    assert status == 200 and urlsplit(profile["avatar_url"]).path == avatar_path

    # Everyone signed in sees the avatar: a square image, none of the photo's metadata.
    status, data = await get_bytes(carol, avatar_path)
    assert status == 200
    with Image.open(io.BytesIO(data)) as avatar:
        assert avatar.width == avatar.height <= 512 and avatar.format in ("JPEG", "PNG")
        assert not avatar.getexif(), dict(avatar.getexif())

    # ...but the original stays readable only by those it was sent to.
    for path in (f"/api/v1/files/{photo['id']}", f"/api/v1/files/{photo['id']}/content",
                 f"/api/v1/files/{photo['id']}/thumbnail"):
        assert (await get_bytes(carol, path))[0] == 404, path
    for reader in (alice, bob):
        assert (await reader.call("GET", f"/api/v1/files/{photo['id']}"))[0] == 200
    # Nor can Carol make it her avatar: she cannot read it.
    error(await carol.call("PATCH", "/api/v1/me", {"avatar_file_id": photo["id"]}), 404, "not_found",
          "avatar_file_id")
    # Using one's avatar again (or someone's, which everyone sees) changes nothing and shares nothing new.
    avatar_id = avatar_path.split("/")[4]
    status, again = await bob.call("PATCH", "/api/v1/me", {"avatar_file_id": avatar_id})
    assert status == 200 and urlsplit(again["avatar_url"]).path == avatar_path


async def test_a_private_image_made_a_group_avatar_stays_private(world: World) -> None:
    alice, bob, dave, carol = await world.people("alice", "bob", "dave", "carol")
    photo = await upload(alice, image_bytes(300, 200, "PNG"), "plan.png", "image/png")
    await send_file(alice, bob, photo["id"])

    # Carol cannot use a file she cannot read.
    error(await carol.call("POST", "/api/v1/groups", {"name": "x", "member_ids": [], "avatar_file_id": photo["id"]}),
          404, "not_found", "avatar_file_id")

    status, group = await bob.call("POST", "/api/v1/groups",
                                   {"name": "club", "member_ids": [dave.id], "avatar_file_id": photo["id"]})
    assert status == 201, group
    for viewer in (carol, dave, bob):  # the group's avatar is an image made for it: square
        status, data = await get_bytes(viewer, f"/api/v1/groups/{group['id']}/avatar")
        assert status == 200
        with Image.open(io.BytesIO(data)) as avatar:
            assert avatar.width == avatar.height == 200, avatar.size
    for outsider in (carol, dave):  # the file itself: still only Alice's and Bob's
        assert (await get_bytes(outsider, f"/api/v1/files/{photo['id']}/content"))[0] == 404
        assert (await get_bytes(outsider, f"/api/v1/files/{photo['id']}/thumbnail"))[0] == 404


# --- instant upload ------------------------------------------------------------------------


async def test_the_instant_upload_challenge_is_a_strict_part_of_the_content(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    for size in (2 * 1024, 100 * 1024):
        data = os.urandom(size)
        await upload(alice, data, f"{size}.bin", "application/octet-stream")
        status, opened = await bob.call("POST", "/api/v1/uploads",
                                        {"name": "mine.bin", "size": size, "md5": hashlib.md5(data).hexdigest()})
        assert status == 201, opened
        offset, length = opened["instant"]["offset"], opened["instant"]["length"]
        assert 0 < length < size and length <= 64 * 1024 and 0 <= offset <= size - length, opened
        complete = f"/api/v1/uploads/{opened['upload_id']}/complete"
        # The md5 he declared is not a proof: the challenge is only part of the content.
        error(await bob.call("POST", complete, {"proof": hashlib.md5(data).hexdigest()}), 422, "checksum_mismatch")
        status, file = await bob.call("POST", complete, {"proof": hashlib.md5(data[offset:offset + length]).hexdigest()})
        assert status == 201 and file["size"] == size, file


async def test_content_under_1_kib_gets_no_instant_upload(world: World) -> None:
    alice, bob = await world.people("alice", "bob")
    data = os.urandom(500)
    await upload(alice, data, "small.bin", "application/octet-stream")
    status, opened = await bob.call("POST", "/api/v1/uploads",
                                    {"name": "mine.bin", "size": len(data), "md5": hashlib.md5(data).hexdigest()})
    assert status == 201 and "instant" not in opened, opened
    complete = f"/api/v1/uploads/{opened['upload_id']}/complete"
    error(await bob.call("POST", complete, {"proof": hashlib.md5(data).hexdigest()}), 422, "validation_failed", "proof")
    status, _ = await bob.api.call("PUT", f"/api/v1/uploads/{opened['upload_id']}/chunks/0", data=data,
                                   headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    status, file = await bob.call("POST", complete, {})
    assert status == 201 and file["size"] == len(data), file


# --- group member lists and ids per call --------------------------------------------------------


async def test_the_member_list_pages(world: World) -> None:
    people = await world.people(*(f"member{i:02}" for i in range(52)))
    owner = people[0]
    gid = await world.group(owner, people[1:])
    base = f"/api/v1/groups/{gid}/members"

    status, first = await owner.call("GET", base)  # default: 50
    assert status == 200 and len(first["items"]) == 50 and first["next_cursor"], first
    status, rest = await owner.call("GET", f"{base}?cursor={first['next_cursor']}")
    assert status == 200 and len(rest["items"]) == 2 and rest["next_cursor"] is None, rest

    seen: list[str] = []
    cursor = None
    while True:
        status, page = await people[5].call("GET", f"{base}?limit=7" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(page["items"]) <= 7, page
        seen += [m["user"]["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["user"]["id"] for m in first["items"] + rest["items"]]
    assert sorted(seen) == sorted(p.id for p in people)

    status, whole = await owner.call("GET", f"{base}?limit=200")
    assert len(whole["items"]) == 52 and whole["next_cursor"] is None
    error(await owner.call("GET", f"{base}?limit=201"), 422, "validation_failed", "limit")
    error(await owner.call("GET", f"{base}?limit=0"), 422, "validation_failed", "limit")
    for bad in ("garbage", "eyJ4IjogMX0", first["next_cursor"] + "x"):
        status, body = await owner.call("GET", f"{base}?cursor={bad}")
        assert (status, body["error"]["code"]) == (400, "invalid_request"), (bad, body)


async def test_the_join_requests_page(world: World) -> None:
    owner, member, *joiners = await world.people("owner", "member", *(f"joiner{i}" for i in range(5)))
    gid = await world.group(owner, [member], join_policy="approval")
    base = f"/api/v1/groups/{gid}/requests"
    filed = []
    for joiner in joiners:
        status, request = await joiner.call("POST", f"/api/v1/groups/{gid}/join", {"message": joiner.username})
        assert status == 202, request
        filed.append(request["id"])

    seen: list[str] = []
    cursor = None
    while True:
        status, page = await owner.call("GET", f"{base}?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(page["items"]) <= 2, page
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == filed[::-1]  # newest first, each once
    members_cursor = (await owner.call("GET", f"/api/v1/groups/{gid}/members?limit=1"))[1]["next_cursor"]
    assert members_cursor is not None
    for bad in ("garbage", members_cursor):  # another list's cursor is not this one's
        status, body = await owner.call("GET", f"{base}?cursor={bad}")
        assert (status, body["error"]["code"]) == (400, "invalid_request"), (bad, body)
    error(await owner.call("GET", f"{base}?limit=201"), 422, "validation_failed", "limit")


async def test_the_ids_of_one_call_are_deduplicated_and_capped(make_world: MakeWorld) -> None:
    world = await make_world(chat={"max_group_members": 5})
    owner, a, b, c = await world.people("owner", "usera", "userb", "userc")

    # Repeats count once (the order kept): five ids, two users.
    status, group = await owner.call("POST", "/api/v1/groups", {"name": "dup", "member_ids": [a.id, b.id, a.id, b.id, a.id]})
    assert status == 201 and group["member_count"] == 3, group
    status, members = await owner.call("GET", f"/api/v1/groups/{group['id']}/members")
    assert [m["user"]["id"] for m in members["items"]] == [owner.id, a.id, b.id]

    # More ids in one call than a group may hold: refused whatever they are, nothing stored.
    error(await owner.call("POST", "/api/v1/groups", {"name": "many", "member_ids": [c.id] * 6}),
          422, "validation_failed", "member_ids")
    error(await owner.call("POST", "/api/v1/groups", {"name": "huge", "member_ids": [str(10**12 + i) for i in range(35_000)]}),
          422, "validation_failed", "member_ids")
    error(await owner.call("POST", f"/api/v1/groups/{group['id']}/members", {"user_ids": [c.id] * 6}),
          422, "validation_failed", "user_ids")
    status, mine = await owner.call("GET", "/api/v1/groups")
    assert [g["id"] for g in mine["items"]] == [group["id"]]
    assert (await owner.call("GET", f"/api/v1/groups/{group['id']}"))[1]["member_count"] == 3
    # Within the cap an invite works.
    status, added = await owner.call("POST", f"/api/v1/groups/{group['id']}/members", {"user_ids": [c.id, c.id]})
    assert status == 201 and [m["user"]["id"] for m in added["items"]] == [c.id], added


# --- large images ----------------------------------------------------------------------------


async def test_large_images_still_get_right_thumbnails(world: World) -> None:
    alice = await world.person("alice")
    # 24 MP each, past the size that decodes one at a time; sent together.
    turned = image_bytes(6000, 4000, "JPEG", orientation=6)  # shown turned: 4000 x 6000
    flat = image_bytes(6000, 4000, "PNG")
    jpeg_file, png_file = await asyncio.gather(upload(alice, turned, "big.jpg", "image/jpeg"),
                                               upload(alice, flat, "big.png", "image/png"))
    for file, (width, height) in ((jpeg_file, (4000, 6000)), (png_file, (6000, 4000))):
        assert (file["width"], file["height"]) == (width, height), file
        status, data = await get_bytes(alice, f"/api/v1/files/{file['id']}/thumbnail")
        assert status == 200
        with Image.open(io.BytesIO(data)) as thumb:
            expected = (171, 256) if width < height else (256, 171)
            assert thumb.size == expected, thumb.size
