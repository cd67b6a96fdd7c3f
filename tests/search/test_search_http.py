"""GET /api/v1/search/messages on both databases: only the caller's conversations."""

from __future__ import annotations

from typing import Any

from lucky_server.keys import CHAT

from ..conftest import Api


async def _send(sender: Api, cid: str, text: str, cmid: str) -> dict[str, Any]:
    status, message = await sender.call("POST", f"/api/v1/conversations/{cid}/messages",
                                        {"client_msg_id": cmid, "kind": "text", "body": {"text": text}})
    assert status == 201, message
    return message


def _direct(a: Api, b: Api) -> str:
    low, high = sorted((a.user["id"], b.user["id"]))
    return f"p:{low}:{high}"


async def _search(user: Api, q: str, **params: str) -> tuple[int, Any]:
    from urllib.parse import urlencode

    return await user.call("GET", "/api/v1/search/messages?" + urlencode({"q": q, **params}))


async def test_search_finds_english_and_chinese_in_my_conversations_only(api: Api) -> None:
    alice, bob, carol = await api.register("alice"), await api.register("bob"), await api.register("carol")
    ab, bc = _direct(alice, bob), _direct(bob, carol)
    hike = await _send(alice, ab, "我们周末去爬山吧", "m1")
    await _send(bob, ab, "Let's meet at the station tomorrow", "m2")
    await _send(bob, bc, "carol, 爬山 is fun; the station is far", "m3")

    status, found = await _search(alice, "爬山")
    assert status == 200
    assert [m["id"] for m in found["items"]] == [hike["id"]]
    assert "爬山" in found["items"][0]["snippet"]
    assert found["next_cursor"] is None

    status, found = await _search(alice, "STATION")
    assert [m["client_msg_id"] for m in found["items"]] == ["m2"]

    status, found = await _search(bob, "station")
    assert sorted(m["client_msg_id"] for m in found["items"]) == ["m2", "m3"]
    status, found = await _search(bob, "station", conversation_id=bc)
    assert [m["client_msg_id"] for m in found["items"]] == ["m3"]

    status, found = await _search(carol, "周末")
    assert found["items"] == []  # alice and bob's conversation is not carol's


async def test_all_words_must_match_and_phrases_keep_their_order(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    cid = _direct(alice, bob)
    await _send(alice, cid, "blue whale", "a")
    await _send(alice, cid, "blue sky, grey whale", "b")
    await _send(alice, cid, "今天天气很好", "c")
    _, found = await _search(bob, "whale blue")
    assert sorted(m["client_msg_id"] for m in found["items"]) == ["a", "b"]
    _, found = await _search(bob, "天气很")
    assert [m["client_msg_id"] for m in found["items"]] == ["c"]
    _, found = await _search(bob, "天很")  # not a substring of the text
    assert found["items"] == []


async def test_recalled_messages_leave_and_edited_ones_are_found_by_new_words(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    cid = _direct(alice, bob)
    gone = await _send(alice, cid, "secret plan", "a")
    kept = await _send(alice, cid, "old words", "b")
    chat = alice.client.server.app[CHAT]
    await chat.recall(int(alice.user["id"]), int(gone["id"]))
    await chat.edit(int(alice.user["id"]), int(kept["id"]), {"text": "brand new words"})
    _, found = await _search(bob, "secret")
    assert found["items"] == []
    _, found = await _search(bob, "brand")
    assert [m["id"] for m in found["items"]] == [kept["id"]]
    assert found["items"][0]["body"]["text"] == "brand new words"
    _, found = await _search(bob, "old")
    assert found["items"] == []


async def test_paging_and_bad_queries(api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    cid = _direct(alice, bob)
    for i in range(5):
        await _send(alice, cid, f"ping number {i}", f"p{i}")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = await _search(bob, "ping", **params)
        assert status == 200 and len(page["items"]) <= 2
        seen.extend(m["client_msg_id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"p{i}" for i in range(5)]

    status, body = await _search(bob, "")
    assert status == 422 and body["error"]["details"]["field"] == "q"
    status, body = await _search(bob, "ping", cursor="!!bad")
    assert status == 400 and body["error"]["details"]["field"] == "cursor"
    status, body = await _search(bob, "ping", conversation_id="nope")
    assert status == 404
    status, body = await _search(bob, "ping", limit="201")
    assert status == 422
    status, body = await _search(bob, "!!! ???")  # no searchable terms at all
    assert status == 200 and body["items"] == []
