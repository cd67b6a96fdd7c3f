"""The load generator on a tiny W1 against a served Lucky and the ceiling relay: it counts right.

Speed is not asserted (DESIGN.md: measured by the benchmark, never by a timed test); only
that every message is delivered and the figures are sane.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.servers import LuckyInstance, Process, start_relay
from lucky_cli import loadgen

PAIRS, MESSAGES = 2, 5


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
