"""Process-level guarantees of a real `lucky serve`: `sent` survives SIGKILL; SIGTERM drains.

The server runs as a subprocess (the installed `lucky` script), so a SIGKILL really loses
whatever was only in memory. 200 messages go over one WebSocket with a window of sends in
flight; once every `sent` is back the server is killed, restarted on the same data dir, and
the history must hold all 200 with seq 1..200.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..services import drop_schema, postgres_url_with_fresh_schema
from ..cli.process import Served, clean_env, lucky

COUNT = 200
WINDOW = 20
# The default send rate (20 a second, bursts of 50) would drop most of a 200-message burst.
SERVE_ENV = {"LUCKY_CHAT__SEND_RATE_PER_S": "100000", "LUCKY_CHAT__SEND_BURST": "1000", "LUCKY_CHAT__FRAME_RATE_PER_S": "0"}


@pytest.fixture(params=["sqlite", "postgres"])
def data_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """An instance initialized by `lucky init`, on SQLite or on a fresh PostgreSQL schema."""
    path = tmp_path / "data"
    schema = None
    extra: list[str] = []
    if request.param == "postgres":
        url, schema = postgres_url_with_fresh_schema()
        extra = ["--database", url]
    try:
        init(path, *extra)
        yield path
    finally:
        if schema is not None:
            drop_schema(schema)


def init(data_dir: Path, *extra: str) -> None:
    done = lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-username", "root",
                 "--admin-password", "admin secret 1", *extra)
    assert done.code == 0, done


def serve(data_dir: Path, **env: str) -> Served:
    """`lucky serve` on the data dir, listening; `env` adds LUCKY_* settings."""
    server = Served("--data-dir", data_dir, env=clean_env(**SERVE_ENV, **env))
    try:
        server.wait_listening()
    except BaseException:
        server.kill()
        raise
    return server


def register(server: Served, username: str) -> dict[str, Any]:
    status, body = server.call("POST", "/api/v1/auth/register", {"username": username, "password": "a password"})
    assert status == 201, body
    return dict(body)


async def _send_all(server: Served, token: str, to: str) -> list[dict[str, Any]]:
    """Send COUNT texts with at most WINDOW unanswered; every `sent`, in the order answered."""
    answered: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.ws_url, headers={"Authorization": f"Bearer {token}"}) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"
            next_index = 0
            while len(answered) < COUNT:
                while next_index < COUNT and next_index - len(answered) < WINDOW:
                    await ws.send_json({"type": "send", "id": next_index, "to": to,
                                        "client_msg_id": f"cm-{next_index}", "kind": "text",
                                        "body": {"text": f"message {next_index}"}})
                    next_index += 1
                frame = await ws.receive_json(timeout=10)
                assert frame["type"] == "sent", frame
                answered.append(frame)
    return answered


async def test_every_sent_message_survives_sigkill(data_dir: Path) -> None:
    server = serve(data_dir)
    try:
        alice, bob = register(server, "alice"), register(server, "bob")
        sent = await _send_all(server, alice["access_token"], bob["user"]["id"])
        server.proc.send_signal(signal.SIGKILL)
        assert server.finish() == -signal.SIGKILL
    finally:
        server.kill()

    assert sorted(f["id"] for f in sent) == list(range(COUNT))
    by_frame = {f["id"]: f["message"] for f in sent}
    assert [by_frame[i]["client_msg_id"] for i in range(COUNT)] == [f"cm-{i}" for i in range(COUNT)]
    cid = by_frame[0]["conversation_id"]

    restarted = serve(data_dir)
    try:
        status, page = restarted.call("GET", f"/api/v1/conversations/{cid}/messages?after_seq=0&limit=200",
                                      token=bob["access_token"])
        assert status == 200, page
        items = page["items"]
        assert [m["seq"] for m in items] == list(range(1, COUNT + 1))
        # one connection's sends are stored in the order it sent them
        assert [m["client_msg_id"] for m in items] == [f"cm-{i}" for i in range(COUNT)]
        assert [m["body"]["text"] for m in items] == [f"message {i}" for i in range(COUNT)]
        assert {m["id"]: m["seq"] for m in items} == {m["id"]: m["seq"] for m in by_frame.values()}
        assert page["has_more"] is False
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.finish() == 0, restarted.text
    finally:
        restarted.kill()


async def test_sigterm_closes_sockets_with_1001_and_exits_0(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    init(data_dir)
    server = serve(data_dir)
    try:
        alice = register(server, "alice")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.ws_url,
                                          headers={"Authorization": f"Bearer {alice['access_token']}"}) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "welcome"
                server.proc.send_signal(signal.SIGTERM)
                msg = await ws.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.CLOSE, msg
                assert ws.close_code == 1001
        code = await asyncio.get_running_loop().run_in_executor(None, server.finish)
        assert code == 0, server.text
        assert "Traceback" not in server.text
    finally:
        server.kill()
