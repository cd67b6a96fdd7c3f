"""Frames of every size reach a real client intact, however many are written in one turn."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest

from lucky_server.chat.gateway import _text_frame_header

from .conftest import Chat


@pytest.mark.parametrize(("length", "header"), [
    (0, b"\x81\x00"),
    (125, b"\x81\x7d"),
    (126, b"\x81\x7e\x00\x7e"),
    (65535, b"\x81\x7e\xff\xff"),
    (65536, b"\x81\x7f" + struct.pack("!Q", 65536)),
])
def test_text_frame_headers_follow_rfc_6455(length: int, header: bytes) -> None:
    assert _text_frame_header(length) == header


async def test_messages_of_every_frame_size_arrive_whole_and_in_order(make_chat: Any) -> None:
    chat: Chat = await make_chat(chat={"send_rate_per_s": 100000, "send_burst": 100000, "frame_rate_per_s": 0})
    alice, bob = await chat.user("alice"), await chat.user("bob")
    a, b = await chat.connect(alice), await chat.connect(bob)
    # Texts from empty-ish to the 8,000-character limit in 3-byte characters (24,000 bytes):
    # their frames cross the 126-byte boundary of the length field, and several are sent
    # before any is read, so many frames share one write.
    texts = [f"{i}" + "x" * i for i in range(40, 140)] + ["语" * 7999, "é" * 4000, "字" * 8000]
    for i, text in enumerate(texts):
        await a.send({"type": "send", "id": i, "to": bob.id, "client_msg_id": f"m{i}", "kind": "text",
                      "body": {"text": text}})
    sent = [await a.expect("sent") for _ in texts]
    assert [f["id"] for f in sent] == list(range(len(texts)))
    got = [await b.expect("message") for _ in texts]
    assert [f["message"]["body"]["text"] for f in got] == texts
    assert [f["message"]["seq"] for f in got] == list(range(1, len(texts) + 1))

    # One sync.result frame past the 16-bit length field (the server writes compact JSON, as orjson).
    result = await b.request({"type": "sync", "cursors": {}}, "sync.result")
    assert [m["body"]["text"] for m in result["messages"]] == texts
    assert len(orjson.dumps(result)) > 65535
