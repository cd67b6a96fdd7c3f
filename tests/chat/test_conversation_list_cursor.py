"""The conversation list's cursor goes into SQL since issue 14: one this server did not issue
is refused before it gets there, on both databases."""

from __future__ import annotations

import pytest

from lucky_server.cursors import encode_cursor

from .conftest import Chat, http_error


@pytest.mark.parametrize("cid", ["x\u0000y", "p:1", "g:", "", "p:2:1:3"])
async def test_a_cursor_whose_conversation_id_is_not_one_is_400(chat: Chat, cid: str) -> None:
    alice = await chat.user("alice")
    cursor = encode_cursor("conversations", 5, cid)
    http_error(await alice.api.call("GET", f"/api/v1/conversations?cursor={cursor}"), 400, "invalid_request",
               "cursor")
