"""The load generator on a tiny W1 and W2 against a served Lucky and the ceiling relay: it counts right.

Speed is not asserted (DESIGN.md: measured by the benchmark, never by a timed test); only
that every message is delivered and the figures are sane.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench.seed import seed_users
from bench.servers import LuckyInstance, Process, start_relay
from lucky_cli import loadgen

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
