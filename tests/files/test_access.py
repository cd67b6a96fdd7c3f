"""Who reads a file: its uploader, and the members of conversations holding a message that
references it; media messages need a file the sender can read; avatars."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from ..http.conftest import assert_error
from .conftest import Site, User, png


def direct(a: User, b: User) -> str:
    low, high = sorted([a.id, b.id])
    return f"p:{low}:{high}"


async def send(user: User, cid: str, kind: str, body: dict[str, Any], cmid: str) -> tuple[int, Any]:
    return await user.call("POST", f"/api/v1/conversations/{cid}/messages",
                           {"client_msg_id": cmid, "kind": kind, "body": body})


async def test_a_direct_message_shares_the_file_with_the_peer_only(site: Site) -> None:
    alice, bob, carol = await site.user("alice"), await site.user("bob"), await site.user("carol")
    file = await alice.uploaded(png(), "cat.png")
    assert_error(await bob.call("GET", f"/api/v1/files/{file['id']}"), 404, "not_found")
    status, message = await send(alice, direct(alice, bob), "image",
                                 {"file_id": file["id"], "width": 40, "height": 30}, "m1")
    assert status == 201, message
    status, seen = await bob.call("GET", f"/api/v1/files/{file['id']}")
    assert status == 200 and seen["id"] == file["id"]
    assert (await bob.download(file))[0] == 200
    assert (await bob.raw("GET", f"/api/v1/files/{file['id']}/thumbnail"))[0] == 200
    # carol is in no conversation holding it
    assert_error(await carol.call("GET", f"/api/v1/files/{file['id']}/content"), 404, "not_found")
    # bob may forward it: he can read it
    status, _ = await send(bob, direct(bob, carol), "file", {"file_id": file["id"]}, "fwd")
    assert status == 201
    assert (await carol.download(file))[0] == 200


async def test_a_media_message_needs_a_file_the_sender_can_read(site: Site) -> None:
    alice, bob = await site.user("alice"), await site.user("bob")
    secret = await alice.uploaded(b"alice's only", "diary.txt")
    cid = direct(alice, bob)
    for kind in ("image", "audio", "video", "file"):
        error = assert_error(await send(bob, cid, kind, {"file_id": secret["id"]}, f"steal-{kind}"), 404, "not_found")
        assert error["details"]["field"] == "body.file_id"
        assert_error(await send(bob, cid, kind, {"file_id": "123456789"}, f"none-{kind}"), 404, "not_found")
    assert_error(await send(bob, cid, "file", {"file_id": "x"}, "bad"), 422, "validation_failed", "body.file_id")
    assert_error(await bob.call("GET", f"/api/v1/files/{secret['id']}"), 404, "not_found")


async def test_a_group_shares_the_file_with_its_members_and_former_members_keep_what_they_saw(site: Site) -> None:
    users = [await site.user(n) for n in ("alice", "bob", "carol", "dave")]
    alice, bob, carol, dave = users
    status, group = await alice.call("POST", "/api/v1/groups", {"name": "team", "member_ids": [bob.id, carol.id]})
    assert status == 201, group
    cid = f"g:{group['id']}"
    before = await alice.uploaded(b"shared before", "before.txt")
    assert (await send(alice, cid, "file", {"file_id": before["id"]}, "f1"))[0] == 201
    for member in (bob, carol):
        assert (await member.download(before))[0] == 200
    assert_error(await dave.call("GET", f"/api/v1/files/{before['id']}"), 404, "not_found")
    # carol leaves; a file sent after that is not hers to read, the one before still is
    assert (await carol.call("DELETE", f"/api/v1/groups/{group['id']}/members/{carol.id}"))[0] in (200, 204)
    after = await alice.uploaded(b"shared after", "after.txt")
    assert (await send(alice, cid, "file", {"file_id": after["id"]}, "f2"))[0] == 201
    assert (await bob.download(after))[0] == 200
    assert_error(await carol.call("GET", f"/api/v1/files/{after['id']}"), 404, "not_found")
    assert (await carol.download(before))[0] == 200


async def test_avatar_is_an_image_the_user_can_read_and_others_can_see(site: Site) -> None:
    alice, bob = await site.user("alice"), await site.user("bob")
    image = await alice.uploaded(png(120, 120), "me.png")
    status, me = await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": image["id"]})
    assert status == 200, me
    # The avatar is a new image made from the file (issue 9): the file itself stays private.
    avatar_path = "/api/v1/files/" + me["avatar_url"].split("/api/v1/files/")[1]
    assert avatar_path.endswith("/content") and image["id"] not in avatar_path
    status, seen = await bob.call("GET", f"/api/v1/users/{alice.id}")
    assert seen["avatar_url"] == me["avatar_url"]
    status, _, body = await bob.raw("GET", avatar_path)
    assert status == 200 and Image.open(io.BytesIO(body)).size == (120, 120)
    assert (await bob.raw("GET", f"/api/v1/files/{image['id']}/content"))[0] == 404
    # not an image, not readable, not a file
    text = await alice.uploaded(b"words", "a.txt")
    assert_error(await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": text["id"]}), 422,
                 "validation_failed", "avatar_file_id")
    bobs = await bob.uploaded(png(), "bob.png")
    assert_error(await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": bobs["id"]}), 404, "not_found")
    assert_error(await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": "99999999"}), 404, "not_found")
    # cleared with null
    status, me = await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": None})
    assert status == 200 and me["avatar_url"] is None


async def test_group_avatar_from_a_file(site: Site) -> None:
    alice, bob = await site.user("alice"), await site.user("bob")
    image = await alice.uploaded(png(300, 300, (0, 200, 0)), "logo.png")
    status, group = await alice.call("POST", "/api/v1/groups",
                                     {"name": "green", "member_ids": [bob.id], "avatar_file_id": image["id"]})
    assert status == 201, group
    status, headers, body = await bob.raw("GET", f"/api/v1/groups/{group['id']}/avatar")
    assert status == 200 and headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG"), headers
    avatar = Image.open(io.BytesIO(body)).convert("RGB")
    assert avatar.size == (256, 256) and avatar.getpixel((128, 128))[1] > 150
    assert (await bob.raw("GET", f"/api/v1/groups/{group['id']}/avatar",
                          headers={"If-None-Match": headers["ETag"]}))[0] == 304
    text = await alice.uploaded(b"x", "x.txt")
    for file_id, status_code in ((text["id"], 422), ((await bob.uploaded(png(), "b.png"))["id"], 404)):
        status, body = await alice.call("POST", "/api/v1/groups", {"name": "n", "member_ids": [],
                                                                   "avatar_file_id": file_id})
        assert status == status_code, body
    # without one, the generated PNG as before
    status, plain = await alice.call("POST", "/api/v1/groups", {"name": "plain", "member_ids": [bob.id]})
    status, headers, _ = await bob.raw("GET", f"/api/v1/groups/{plain['id']}/avatar")
    assert status == 200 and headers["Content-Type"] == "image/png"
