"""The load generator on a tiny W1 and W2 against a served Lucky and the ceiling relay: it counts right.

Speed is not asserted (DESIGN.md: measured by the benchmark, never by a timed test); only
that every message is delivered and the figures are sane.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench import socket_memory
from bench.cluster import Cluster, CommandCounter, Settings, bus_problems, measure, start_cluster
from bench.seed import seed_users
from bench.servers import LuckyInstance, Process, start_relay
from lucky_cli import loadgen

from .cli.process import clean_env, lucky
from .services import POSTGRES_URL, REDIS_URL, require

PAIRS, MESSAGES = 2, 5
GROUP, GROUP_MESSAGES = 5, 10


def check(result: loadgen.W1Result, pid: int) -> None:
    assert result.errors == {}
    assert not result.timed_out
    assert result.expected == PAIRS * MESSAGES
    assert result.sent == result.delivered == PAIRS * MESSAGES
    assert result.msgs_per_s > 0 and result.seconds > 0
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms <= result.max_ms < 30_000
    assert result.server_peak_rss_mb is not None and result.server_peak_rss_mb > 1
    assert pid > 0


@pytest.fixture
def lucky_served(tmp_path: Path) -> Iterator[Process]:
    instance = LuckyInstance(tmp_path, "sqlite")
    proc = instance.serve()
    try:
        yield proc
    finally:
        proc.stop()
        instance.remove()


@pytest.fixture
async def lucky_with_members(tmp_path: Path) -> AsyncIterator[tuple[Process, list[str]]]:
    """A served Lucky on SQLite whose GROUP accounts were seeded before it started, as bench/run.py does."""
    instance = LuckyInstance(tmp_path, "sqlite")
    names = [f"member{i}" for i in range(GROUP)]
    await seed_users(instance.data_dir, names, loadgen.PASSWORD)
    proc = instance.serve()
    try:
        yield proc, names
    finally:
        proc.stop()
        instance.remove()


@pytest.fixture
def relay() -> Iterator[Process]:
    proc = start_relay()
    try:
        yield proc
    finally:
        proc.stop()


async def test_w1_on_lucky_delivers_every_message(lucky_served: Process) -> None:
    async with loadgen.new_session() as session:
        endpoints = await loadgen.register_users(session, lucky_served.url,
                                                 [f"smoke{i}" for i in range(2 * PAIRS)])
        result = await loadgen.run_w1(session, loadgen.make_pairs(endpoints), MESSAGES, window=3,
                                      server_pid=lucky_served.pid, timeout=60)
    check(result, lucky_served.pid)
    assert lucky_served.errors() == []


async def test_w1_on_the_relay_delivers_every_message(relay: Process) -> None:
    async with loadgen.new_session() as session:
        endpoints = loadgen.relay_endpoints(relay.url, 2 * PAIRS)
        result = await loadgen.run_w1(session, loadgen.make_pairs(endpoints), MESSAGES, window=3,
                                      server_pid=relay.pid, timeout=60)
    check(result, relay.pid)


def check_w2(result: loadgen.W2Result, pid: int) -> None:
    assert result.errors == {}
    assert result.complete, result.problems()
    assert result.problems() == []
    assert result.expected == GROUP_MESSAGES * (GROUP - 1)
    assert result.delivered == result.expected and result.missing == 0
    assert result.duplicates == result.out_of_order == result.members_short == 0
    assert result.sent == GROUP_MESSAGES
    assert result.deliveries_per_s > 0 and result.seconds > 0
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms <= result.max_ms < 30_000
    assert len(result.latencies_ms) == result.expected
    assert result.server_peak_rss_mb is not None and result.server_peak_rss_mb > 1
    assert pid > 0


async def test_w2_on_lucky_delivers_every_message_to_every_member(
        lucky_with_members: tuple[Process, list[str]]) -> None:
    proc, names = lucky_with_members
    async with loadgen.new_session() as session:
        members = await loadgen.login_users(session, proc.url, names)
        group_id = await loadgen.create_group(session, members[0], members, "smoke")
        result = await loadgen.run_w2(session, members, group_id, GROUP_MESSAGES, window=3,
                                      server_pid=proc.pid, timeout=60)
    check_w2(result, proc.pid)
    assert result.stored == GROUP_MESSAGES  # read back from the group's history
    assert proc.errors() == []


async def test_w2_on_the_relay_delivers_every_message_to_every_member(relay: Process) -> None:
    async with loadgen.new_session() as session:
        members = loadgen.relay_endpoints(relay.url, GROUP, "m", groups=["smoke"])
        result = await loadgen.run_w2(session, members, "smoke", GROUP_MESSAGES, window=3,
                                      server_pid=relay.pid, timeout=60)
    check_w2(result, relay.pid)
    assert result.stored is None  # the relay stores nothing


async def test_w2_losses_are_reported(relay: Process) -> None:
    """A member outside the relay's group gets nothing: the run must say so, not pass quietly."""
    async with loadgen.new_session() as session:
        members = loadgen.relay_endpoints(relay.url, 3, "in", groups=["lossy"])
        outsider = loadgen.relay_endpoints(relay.url, 1, "out")
        result = await loadgen.run_w2(session, [*members, *outsider], "lossy", 4, window=2, timeout=0.5)
    assert not result.complete
    assert result.missing == 4 and result.members_short == 1 and result.delivered == 8
    assert "MISSING" in result.problems()[0]


async def test_idle_sockets_are_counted(relay: Process) -> None:
    async with loadgen.new_session() as session:
        result = await loadgen.run_idle(session, loadgen.relay_endpoints(relay.url, 20, "idle"), relay.pid,
                                        settle_s=0.1)
    assert result.sockets == 20
    assert result.rss_after_mb > 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert loadgen.percentile(values, 50) == 50
    assert loadgen.percentile(values, 99) == 99
    assert loadgen.percentile(values, 100) == 100
    assert loadgen.percentile([], 99) == 0


def test_spread_puts_the_two_users_of_a_pair_on_different_nodes() -> None:
    users = [loadgen.Endpoint(f"ws://127.0.0.1:1000/ws?token=t{i}", f"u{i}", f"t{i}") for i in range(6)]
    spread = loadgen.spread(users, ["http://127.0.0.1:2001", "http://127.0.0.1:2002/"])
    assert [e.ws_url for e in spread[:3]] == ["ws://127.0.0.1:2001/ws?token=t0", "ws://127.0.0.1:2002/ws?token=t1",
                                              "ws://127.0.0.1:2001/ws?token=t2"]
    assert [(e.user_id, e.token) for e in spread] == [(u.user_id, u.token) for u in users]
    for sender, receiver in loadgen.make_pairs(spread):
        assert sender.ws_url.split("/ws")[0] != receiver.ws_url.split("/ws")[0]


SMALL = Settings(pairs=PAIRS, messages=MESSAGES, window=3, group_size=GROUP, rounds=1, timeout=60, idle_s=0.2)


@pytest.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two `lucky serve` on one PostgreSQL schema and the shared Redis (a prefix of their own),
    W1's pairs and W2's members logged in and spread over them, as bench/cluster.py starts them."""
    require("postgres", POSTGRES_URL, 5432)
    require("redis", REDIS_URL, 6379)
    cluster = await start_cluster("two", tmp_path, SMALL, REDIS_URL, POSTGRES_URL)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


async def test_the_scale_out_report_over_two_nodes_counts_every_delivery(two_nodes: Cluster) -> None:
    counter = CommandCounter(REDIS_URL)
    try:
        rows = await measure(two_nodes, SMALL, counter)
    finally:
        counter.close()
    w1, w2 = rows
    assert (w1["workload"], w2["workload"]) == ("W1", "W2")
    assert w1["nodes"] == w1["processes"] == 2
    assert w1["messages_sent"] == w1["delivered"] == w1["expected"] == PAIRS * MESSAGES
    assert w2["messages_sent"] == MESSAGES
    assert w2["delivered"] == w2["expected"] == MESSAGES * (GROUP - 1)
    assert w1["complete"] and w2["complete"]
    for row in rows:
        assert row["msgs_per_s"] > 0 and row["deliveries_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["server_cpu_pct"] is not None
        # The shared Redis also serves other tests, so these are at least the nodes' own commands.
        assert row["redis_publish"] >= 1  # the pairs are split over the nodes: messages cross the bus
        assert row["redis_commands"] >= row["redis_publish"]
        assert row["redis_commands_per_msg"] == row["redis_commands"] / row["messages_sent"]
        assert row["redis_by_command"]["publish"] == row["redis_publish"]
        assert row["redis_idle_commands_per_s"] is not None
        assert 0 <= row["redis_net_publish_per_msg"] <= row["redis_publish_per_msg"]
        assert 0 <= row["redis_net_commands_per_msg"] <= row["redis_commands_per_msg"]
        assert row["redis_socket_commands"]["hset"] >= 1  # connecting a socket writes its presence
    assert [e.ws_url.split("/ws?")[0] for e in two_nodes.members[:2]] == [loadgen.ws_base(u) for u in two_nodes.urls]
    assert await bus_problems(two_nodes) == []  # the figures are the bus's, not a local fallback's
    assert all(proc.errors() == [] for proc in two_nodes.procs)


async def test_lucky_bench_spreads_its_users_over_the_urls_given(two_nodes: Cluster) -> None:
    done = await asyncio.to_thread(lucky, "bench", "--urls", ",".join(two_nodes.urls), "--pairs", str(PAIRS),
                                   "--messages", str(MESSAGES), "--window", "3", "--timeout", "60", "--json",
                                   env=clean_env(), timeout=110)
    assert done.code == 0, done
    result = json.loads(done.out)
    assert result["sent"] == result["delivered"] == result["expected"] == PAIRS * MESSAGES
    assert result["errors"] == {}
    assert result["server_peak_rss_mb"] > 1  # both local nodes found from their ports
    assert all(proc.errors() == [] for proc in two_nodes.procs)


def test_lucky_bench_refuses_a_malformed_url_among_several() -> None:
    done = lucky("bench", "--urls", "http://127.0.0.1:1,127.0.0.1:2")
    assert "--url must look like http://HOST:PORT" in done.assert_one_line_error(code=2)


async def test_socket_memory_counts_what_each_idle_socket_keeps() -> None:
    lucky, relay = await socket_memory.measure(20)
    # Both servers keep kilobytes per socket (too few sockets here to compare them: free lists
    # and arenas weigh more), and Lucky's own objects are found at their lines.
    assert sum(relay.values()) > 5_000 and sum(lucky.values()) > 5_000
    assert any(line.startswith("server/chat/") for line in lucky)
    assert not any(line.startswith("server/") for line in relay)
