"""Messaging a user whose account is disabled, then enabled again, on the running server."""

from __future__ import annotations

from lucky_server.keys import CORE

from .conftest import Chat, assert_error, direct_id


async def test_a_disabled_user_cannot_be_messaged_until_enabled_again(chat: Chat) -> None:
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    await a.send_text(bob.id, "before", "m1")
    await b.expect("message")
    auth = chat.client.server.app[CORE].auth  # what `lucky user disable|enable` calls

    await auth.set_disabled(int(bob.id), True)
    _, frames = await b.closed()
    assert any(f["type"] == "kick" and f.get("reason") == "disabled" for f in frames), frames
    base = {"type": "send", "kind": "text", "body": {"text": "hello?"}}
    await a.send({**base, "id": "to", "to": bob.id, "client_msg_id": "m2"})
    assert_error(await a.recv(), "not_found", "to")
    await a.send({**base, "id": "conv", "conversation_id": direct_id(alice, bob), "client_msg_id": "m3"})
    assert_error(await a.recv(), "forbidden", "conv")

    await auth.set_disabled(int(bob.id), False)
    b = await chat.connect(bob, "d1")  # the old sessions ended; bob signs in again
    sent = await a.send_text(bob.id, "welcome back", "m4")
    assert sent["message"]["seq"] == 2
    pushed = await b.expect("message")
    assert pushed["message"]["body"] == {"text": "welcome back"}
    sent = await a.request({**base, "conversation_id": direct_id(alice, bob), "client_msg_id": "m5"}, "sent")
    assert (await b.expect("message"))["message"]["id"] == sent["message"]["id"]
