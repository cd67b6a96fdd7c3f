"""A real `lucky serve` (subprocess) pushing to a real receiver, with the real `lucky outbox`
CLI beside it, on SQLite and PostgreSQL: a push that failed every attempt comes back with
`lucky outbox retry --failed`; a server SIGKILLed while its push was in flight delivers it
after a restart, once, with the same bytes (the scheduler's outbox.retry job takes it once
the dead process's claim has run out).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..chat.test_durability import data_dir, register, serve  # noqa: F401 - fixture and helpers reused
from ..cli.process import Served, lucky
from .receiver import SECRET, ThreadedReceiver

DEADLINE_S = 40.0


@pytest.fixture
def gateway() -> Iterator[ThreadedReceiver]:
    receiver = ThreadedReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def serve_pushing(data_dir: Path, gateway: ThreadedReceiver, **push: str) -> Served:
    return serve(data_dir, LUCKY_PUSH__WEBHOOK_URL=gateway.receiver.url, LUCKY_PUSH__WEBHOOK_SECRET=SECRET,
                 LUCKY_JOBS__OUTBOX_EVERY_S="1", LUCKY_OUTBOX__GRACE_S="1",
                 **{f"LUCKY_PUSH__{k.upper()}": v for k, v in push.items()})


async def send_text(server: Served, token: str, to: str, text: str, cmid: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.ws_url, headers={"Authorization": f"Bearer {token}"}) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"
            await ws.send_json({"type": "send", "to": to, "client_msg_id": cmid, "kind": "text", "body": {"text": text}})
            frame: dict[str, Any] = await ws.receive_json(timeout=10)
            assert frame["type"] == "sent", frame
            return frame


def outbox_status(data_dir: Path) -> dict[str, dict[str, Any]]:
    result = lucky("outbox", "status", "--json", "--data-dir", data_dir)
    assert result.code == 0, result
    return {item["kind"]: item for item in json.loads(result.out)["items"]}


def wait_status(data_dir: Path, kind: str, pending: int, failed: int) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        found = outbox_status(data_dir)
        if (found[kind]["pending"], found[kind]["failed"]) == (pending, failed):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


async def test_retry_failed_through_the_cli_delivers_what_failed_every_attempt(
        data_dir: Path, gateway: ThreadedReceiver) -> None:
    gateway.answer(then="500")
    server = serve_pushing(data_dir, gateway, max_attempts="1", timeout_s="2")
    try:
        alice, bob = register(server, "alice"), register(server, "bob")
        await send_text(server, alice["access_token"], bob["user"]["id"], "are you there?", "c1")
        first = gateway.wait_hits(1)[0]
        assert first.answer == "500" and first.signed
        found = wait_status(data_dir, "push", 0, 1)
        assert found["push"]["oldest_pending_s"] is None

        table = lucky("outbox", "status", "--data-dir", data_dir)
        assert table.code == 0, table
        rows = {cells[0]: cells[1:] for line in table.out.splitlines() if line.count("│") >= 4
                for cells in [[c.strip() for c in line.split("│")[1:-1]]]}
        assert rows == {"message": ["0", "0", "-"], "push": ["0", "1", "-"]}, table.out

        gateway.answer(then="200")
        again = lucky("outbox", "retry", "--failed", "--data-dir", data_dir)
        assert again.code == 0, again
        assert "1 failed row(s) made pending (message 0, push 1)" in again.out
        hits = gateway.wait_hits(2, timeout=DEADLINE_S)  # the server's outbox.retry job sends it
        assert [h.answer for h in hits] == ["500", "200"]
        assert hits[1].body == hits[0].body and hits[1].signed
        assert hits[1].json["user_id"] == bob["user"]["id"]
        wait_status(data_dir, "push", 0, 0)

        none = lucky("outbox", "retry", "--data-dir", data_dir)
        assert none.code == 0 and "0 pending row(s) made due" in none.out, none
        server.proc.send_signal(signal.SIGTERM)
        assert server.finish() == 0, server.text
    finally:
        server.kill()
    assert len(gateway.receiver.hits) == 2


async def test_a_push_in_flight_when_the_server_is_killed_is_delivered_once_after_restart(
        data_dir: Path, gateway: ThreadedReceiver) -> None:
    gateway.answer("hang")  # the first attempt gets no answer: the server dies waiting for it
    server = serve_pushing(data_dir, gateway, timeout_s="1")
    try:
        alice, bob = register(server, "alice"), register(server, "bob")
        sent = await send_text(server, alice["access_token"], bob["user"]["id"], "ping", "c1")
        assert gateway.wait_hits(1)[0].answer == "hang"
        server.proc.send_signal(signal.SIGKILL)
        assert server.finish() == -signal.SIGKILL
    finally:
        server.kill()
    # Left as a dead node leaves them: the notification claimed (in flight), the message's
    # outbox row not yet marked dispatched.
    found = outbox_status(data_dir)
    assert (found["push"]["pending"], found["message"]["pending"]) == (1, 1), found

    restarted = serve_pushing(data_dir, gateway, timeout_s="1")
    try:
        hits = gateway.wait_hits(2, timeout=DEADLINE_S)
        assert [h.answer for h in hits] == ["hang", "200"]
        assert hits[0].body == hits[1].body and hits[1].signed
        note = hits[1].json
        assert (note["message_id"], note["user_id"]) == (sent["message"]["id"], bob["user"]["id"])
        wait_status(data_dir, "push", 0, 0)
        wait_status(data_dir, "message", 0, 0)  # re-dispatched by the job after outbox.grace_s
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.finish() == 0, restarted.text
    finally:
        restarted.kill()
    assert len(gateway.receiver.hits) == 2, "delivered once"
