"""The cost-growth benchmark's seeding (issue 14): what it writes is what the server would have
stored, so the server reads it and carries on from it; and the benchmark's reads run on it.

Speed is not asserted (measured by bench/growth.py, never by a timed test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import growth
from bench.seed_history import GrowthPlan, seed_history
from bench.servers import LuckyInstance
from lucky_cli import loadgen

from .services import POSTGRES_URL, require

PLAN = GrowthPlan(big=7, sync=1_200, many=4, per_many=2, others=5)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require("postgres", POSTGRES_URL, 5432)
    return str(request.param)


@pytest.fixture
def instance(backend: str, tmp_path: Path) -> Iterator[LuckyInstance]:
    made = LuckyInstance(tmp_path, backend, POSTGRES_URL)
    try:
        yield made
    finally:
        made.remove()


async def _get(session: Any, url: str, token: str | None) -> Any:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_seeded_history_reads_as_the_server_stores_it_and_seqs_go_on(instance: LuckyInstance) -> None:
    seeded = await seed_history(instance.data_dir, loadgen.PASSWORD, PLAN)
    assert seeded.messages == PLAN.total - 1  # 4 peers make 4 pairs (no pair twice), not 5
    proc = instance.serve()
    try:
        async with loadgen.new_session() as session:
            a, b, many = await loadgen.login_users(session, proc.url, ["big-a", "big-b", "many"])
            base = f"{proc.url}/api/v1/conversations"
            page = await _get(session, f"{base}/{seeded.big}/messages?limit=50", a.token)
            items = page["items"]
            assert [m["seq"] for m in items] == list(range(1, 8)) and not page["has_more"]
            assert [m["sender_id"] for m in items[:2]] == [a.user_id, b.user_id]  # in turn, from big-a
            assert items[0]["body"] == {"text": "seeded message 1"} and items[0]["kind"] == "text"
            assert sorted(int(m["id"]) for m in items) == [int(m["id"]) for m in items]
            listed = await _get(session, f"{base}?limit=10", many.token)
            assert len(listed["items"]) == PLAN.many
            assert all(c["last_seq"] == PLAN.per_many and c["unread"] == 0 for c in listed["items"])

            # The seq counter stands at the last seq, and new ids come after the seeded ones.
            sock = await loadgen.connect(session, a)
            try:
                await sock.ws.send_json({"type": "send", "id": 1, "to": b.user_id, "client_msg_id": "after-seed",
                                         "kind": "text", "body": {"text": "hello"}})
                while (reply := await sock.ws.receive_json(timeout=10))["type"] != "sent":
                    assert reply["type"] != "error", reply
            finally:
                await sock.ws.close()
            assert reply["message"]["seq"] == 8
            assert int(reply["message"]["id"]) > int(items[-1]["id"])
    finally:
        proc.stop()
        assert proc.errors() == []


async def test_the_growth_benchmark_measures_and_finds_no_scan(backend: str, tmp_path: Path) -> None:
    # One backend's whole pass (seeding, reads over HTTP and WebSocket, plans), W1 left out.
    args = growth.parse_args(["--messages", "300", "--sync", "1200", "--conversations", "4", "--others", "5",
                              "--repeat", "2", "--sync-repeat", "1", "--no-w1", "--backends", backend])
    report: dict[str, Any] = {"seeding": [], "reads": [], "plans": {}, "w1": []}
    (tmp_path / "growth").mkdir()
    await growth.one_backend(backend, tmp_path / "growth", args, report)
    assert [r["items"] for r in report["reads"]] == [50, 50, 4, 1200]
    plans = report["plans"][backend]
    assert plans and all(p["scans"] == [] for p in plans)
    assert {p["path"] for p in plans} == {"history, newest", "history, middle", "sync, first frame",
                                          "sync, a later frame", "conversation list"}
