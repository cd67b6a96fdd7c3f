"""`lucky doctor` with redis.url set: the nodes on the bus, their clocks and versions.

The node entries are written into Redis under the test's own prefix exactly as a node writes
its heartbeat (`P:nodes`, `P:node:<instance>`); the last test has real `lucky serve` nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from lucky_server import __version__

from ..cli.process import Result, clean_env, lucky
from ..cluster.cluster import cluster_on, shared_redis
from ..services import REDIS_URL, redis_prefix
from .conftest import PASSWORD, set_key


class Beats:
    """Heartbeats written under one prefix of the shared Redis, on Redis's own clock."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.client = redis.Redis.from_url(REDIS_URL)

    def redis_now_ms(self) -> int:
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def node(self, name: str, *, skew_ms: int = 3, age_ms: int = 1500, version: str = __version__,
             pid: int = 4242) -> str:
        instance = f"{name}/{abs(hash((name, skew_ms, version))) % 0xFFFFFF:06x}"
        now = self.redis_now_ms()
        info: dict[str, Any] = {
            "name": name, "instance": instance, "host": f"host-{name}", "pid": pid, "version": version,
            "started_ms": now - 3_600_000 + skew_ms, "clock_ms": now - age_ms + skew_ms, "skew_ms": skew_ms,
            "url": f"http://{name}.internal:8080", "connections": 7}
        self.client.set(f"{self.prefix}:node:{instance}", orjson.dumps(info), px=30_000)
        self.client.sadd(f"{self.prefix}:nodes", instance)
        return instance

    def dead(self, instance: str) -> None:
        """Listed in the set, its heartbeat expired (a node killed since)."""
        self.client.sadd(f"{self.prefix}:nodes", instance)

    def clear(self) -> None:
        keys = list(self.client.scan_iter(f"{self.prefix}:*"))
        if keys:
            self.client.delete(*keys)
        self.client.close()


@pytest.fixture
def beats() -> Iterator[Beats]:
    made = Beats(redis_prefix())
    try:
        yield made
    finally:
        made.clear()


@pytest.fixture
def site(tmp_path: Path, beats: Beats) -> Path:
    """An instance whose redis.url is the shared Redis, under the test's prefix."""
    data_dir = tmp_path / "site"
    done = lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-password", PASSWORD,
                 "--redis", REDIS_URL)
    assert done.code == 0, done
    set_key(data_dir, "redis", "prefix", beats.prefix)
    return data_dir


def doctor(data_dir: Path, **env: str) -> Result:
    return lucky("doctor", "--data-dir", data_dir, env=clean_env(COLUMNS="400", **env))


def table_rows(out: str, title: str) -> list[list[str]]:
    """The rows of the table under `title`, as lists of cell texts."""
    rows: list[list[str]] = []
    inside = False
    for line in out.splitlines():
        if line.strip().startswith(title):
            inside = True
        elif inside and line.startswith("│"):
            rows.append([c.strip() for c in line.strip().strip("│").split("│")])
        elif inside and line.startswith("└"):
            break
    return rows


def nodes_row(out: str) -> list[str]:
    return next(r for r in table_rows(out, "lucky doctor:") if r[0] == "nodes")


def test_doctor_lists_the_live_nodes_with_their_clocks(site: Path, beats: Beats) -> None:
    a = beats.node("alpha", skew_ms=-40, age_ms=2000, pid=101)
    b = beats.node("beta", skew_ms=250, age_ms=500, pid=202)
    beats.dead("gamma/abcdef")
    result = doctor(site)
    assert result.code == 0, result
    assert nodes_row(result.out)[1:4] == ["ok", f"redis {beats.prefix}:nodes",
                                          "2 node(s) on the bus, one version, clocks within 1000 ms of Redis"]
    rows = table_rows(result.out, "nodes on the bus")
    assert [r[:5] for r in rows[:2]] == [["alpha", a, "host-alpha", "101", __version__],
                                         ["beta", b, "host-beta", "202", __version__]]
    assert [r[7] for r in rows[:2]] == ["-40 ms", "+250 ms"]
    assert [r[8] for r in rows[:2]] == ["7", "7"]
    # The heartbeat's age is read on Redis's clock, whatever the node's own clock says.
    ages = [float(re.fullmatch(r"([0-9.]+) s ago", r[5]).group(1)) for r in rows[:2]]  # type: ignore[union-attr]
    assert 2.0 <= ages[0] < 30 and 0.5 <= ages[1] < 30, rows
    assert rows[0][6] == "60 min"
    assert rows[2][0] == "(this doctor)" and rows[2][4] == __version__
    assert re.fullmatch(r"[+-][0-9]+ ms", rows[2][7]), rows[2]
    assert "gamma" not in result.out


def test_a_clock_more_than_a_second_off_fails_doctor(site: Path, beats: Beats) -> None:
    beats.node("alpha")
    late = beats.node("beta", skew_ms=-1500)
    result = doctor(site)
    assert result.assert_one_line_error(code=1) == "error: nodes failed: see the table above"
    row = nodes_row(result.out)
    assert row[1] == "FAIL"
    assert f"node {late} on host-beta: clock 1.5 s behind Redis (more than 1000 ms)" in row[3], row
    assert [r[7] for r in table_rows(result.out, "nodes on the bus")][:2] == ["+3 ms", "-1500 ms"]


def test_nodes_on_different_versions_fail_doctor(site: Path, beats: Beats) -> None:
    beats.node("alpha")
    beats.node("beta", version="99.0.0")
    result = doctor(site)
    assert result.code == 1, result
    assert f"nodes run different versions ({__version__}, 99.0.0): finish the upgrade on every node" \
        in nodes_row(result.out)[3]


def test_no_node_running_is_said_and_not_a_failure(site: Path, beats: Beats) -> None:
    beats.dead("alpha/000001")
    result = doctor(site)
    assert result.code == 0, result
    assert nodes_row(result.out)[3] == "no node is on the bus (none is running)"
    assert [r[0] for r in table_rows(result.out, "nodes on the bus")] == ["(this doctor)"]


def test_the_embedded_default_has_no_nodes_table(tmp_path: Path) -> None:
    data_dir = tmp_path / "plain"
    assert lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-password", PASSWORD).code == 0
    result = doctor(data_dir)
    assert result.code == 0, result
    assert "nodes on the bus" not in result.out
    assert [r[0] for r in table_rows(result.out, "lucky doctor:")] == ["database", "redis", "storage"]


def test_real_nodes_on_postgresql_and_redis_show_up_in_doctor(tmp_path: Path) -> None:
    prefix = redis_prefix()
    with cluster_on(tmp_path, shared_redis(), prefix) as cluster:
        cluster.start(2)
        cluster.wait_nodes(2)
        result = lucky("doctor", "--data-dir", cluster.data_dir, env={**cluster.env, "COLUMNS": "400"})
        assert result.code == 0, result
        checks = {r[0]: r[1] for r in table_rows(result.out, "lucky doctor:")}
        assert checks == {"database": "ok", "redis": "ok", "storage": "ok", "nodes": "ok"}, result.out
        rows = table_rows(result.out, "nodes on the bus")
        assert [r[0] for r in rows] == ["n1", "n2", "(this doctor)"]
        pids = {str(node.proc.pid) for node in cluster.nodes}
        assert {r[3] for r in rows[:2]} == pids
        assert all(r[1].startswith(f"{r[0]}/") and r[4] == __version__ for r in rows[:2])
        # Stopped cleanly, a node leaves the bus at once.
        cluster.nodes[1].stop()
        after = lucky("doctor", "--data-dir", cluster.data_dir, env={**cluster.env, "COLUMNS": "400"})
        assert [r[0] for r in table_rows(after.out, "nodes on the bus")] == ["n1", "(this doctor)"]
