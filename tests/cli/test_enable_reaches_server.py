"""`lucky user` commands run beside a serving process: the server sees them without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from .process import Served, lucky


async def _send(ws: aiohttp.ClientWebSocketResponse, frame_id: str, to: str, text: str) -> dict[str, Any]:
    await ws.send_json({"type": "send", "id": frame_id, "to": to, "client_msg_id": frame_id, "kind": "text",
                        "body": {"text": text}})
    while True:
        frame: dict[str, Any] = await ws.receive_json(timeout=10)
        if frame.get("id") == frame_id:
            return frame


async def test_a_user_enabled_from_the_cli_can_be_messaged_without_a_restart(served: Served, data_dir: Path) -> None:
    people = {}
    for name in ("alice", "bob"):
        status, body = served.call("POST", "/api/v1/auth/register", {"username": name, "password": "long enough"})
        assert status == 201, body
        people[name] = body
    bob_id = people["bob"]["user"]["id"]
    async with aiohttp.ClientSession() as http, http.ws_connect(
            served.ws_url,
            headers={"Authorization": f"Bearer {people['alice']['access_token']}"}) as ws:
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"

        assert lucky("user", "disable", "bob", "--data-dir", data_dir).code == 0
        refused = await _send(ws, "m1", bob_id, "are you there?")
        assert refused["type"] == "error" and refused["code"] == "not_found", refused

        assert lucky("user", "enable", "bob", "--data-dir", data_dir).code == 0
        sent = await _send(ws, "m2", bob_id, "welcome back")
        assert sent["type"] == "sent", sent

    status, body = served.login("bob", "long enough")
    assert status == 200, body
    cid = sent["message"]["conversation_id"]
    status, page = served.call("GET", f"/api/v1/conversations/{cid}/messages", token=body["access_token"])
    assert status == 200, page
    assert [m["body"]["text"] for m in page["items"]] == ["welcome back"]


async def test_sessions_ended_from_the_cli_are_kicked_from_a_running_server(served: Served, data_dir: Path) -> None:
    tokens = {}
    for name in ("alice", "bob"):
        status, body = served.call("POST", "/api/v1/auth/register", {"username": name, "password": "long enough"})
        assert status == 201, body
        tokens[name] = body["access_token"]
    ws_url = served.ws_url
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(ws_url, headers={"Authorization": f"Bearer {tokens['bob']}"}) as bob, \
            http.ws_connect(ws_url, headers={"Authorization": f"Bearer {tokens['alice']}"}) as alice:
        for ws in (bob, alice):
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"

        assert lucky("user", "disable", "bob", "--data-dir", data_dir).code == 0
        # auth.revocation_poll_s (2 s by default): the server finds the ended session and kicks it.
        kick = await bob.receive_json(timeout=10)
        assert kick == {"type": "kick", "reason": "disabled"}
        closing = await bob.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and bob.close_code == 4001

        # Alice, whose session was not ended, stays connected and served.
        await alice.send_json({"type": "ping", "id": "p"})
        assert await alice.receive_json(timeout=10) == {"type": "pong", "id": "p"}
