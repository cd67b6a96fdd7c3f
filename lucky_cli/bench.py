"""`lucky bench`: run workload W1 (pairs) or W2 (one group) against a running server.

The generator itself is `lucky_cli.loadgen`, shared with `bench/run.py` (which also starts
the servers and the ceiling relay, and seeds W2's members instead of registering them).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Optional
from urllib.parse import urlsplit

import aiohttp
import typer

from . import loadgen, output
from .output import fail

WORKLOADS = ("w1", "w2")


async def _register(session: aiohttp.ClientSession, urls: list[str], count: int,
                    password: str) -> list[loadgen.Endpoint]:
    """`count` new accounts, named uniquely for this run, logged in on the first URL, their
    sockets spread over every URL (the nodes share one database)."""
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    with output.err.status(f"registering {count} users on {urls[0]}"):
        endpoints = await loadgen.register_users(session, urls[0], [f"{prefix}{i}" for i in range(count)],
                                                 password)
    return loadgen.spread(endpoints, urls)


async def _run_w1(urls: list[str], pairs: int, messages: int, window: int, timeout: float,
                  pids: list[int], password: str) -> loadgen.W1Result:
    loadgen.raise_open_files(4 * pairs + 256)
    async with loadgen.new_session() as session:
        endpoints = await _register(session, urls, 2 * pairs, password)
        with output.err.status(f"W1: {pairs} pairs x {messages} messages, window {window}"):
            return await loadgen.run_w1(session, loadgen.make_pairs(endpoints), messages, window,
                                        server_pid=pids, timeout=timeout)


async def _run_w2(urls: list[str], group_size: int, messages: int, window: int, timeout: float,
                  pids: list[int], password: str) -> loadgen.W2Result:
    loadgen.raise_open_files(2 * group_size + 256)
    async with loadgen.new_session() as session:
        members = await _register(session, urls, group_size, password)
        with output.err.status(f"creating a group of {group_size}"):
            group_id = await loadgen.create_group(session, members[0], members, f"bench W2 G={group_size}")
        with output.err.status(f"W2: a group of {group_size}, {messages} messages, window {window}"):
            return await loadgen.run_w2(session, members, group_id, messages, window, server_pid=pids,
                                        timeout=timeout)


def _local_pids(urls: list[str]) -> list[int]:
    """The pids (workers included) of the servers listening on the local URLs' ports."""
    pids: list[int] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.hostname in ("127.0.0.1", "localhost", "::1"):
            pid = loadgen.find_listening_pid(parts.port or (443 if parts.scheme == "https" else 80))
            if pid is not None:
                pids.extend(p for p in loadgen.with_children(pid) if p not in pids)
    return pids


def _common_rows(result: loadgen.Figures) -> list[list[str]]:
    rss = f"{result.server_peak_rss_mb:.1f} MB" if result.server_peak_rss_mb is not None else "n/a"
    cpu = f"{result.server_cpu_pct:.0f}%" if result.server_cpu_pct is not None else "n/a"
    return [
        ["latency p50 / p95 / p99", f"{result.p50_ms:.2f} / {result.p95_ms:.2f} / {result.p99_ms:.2f} ms"],
        ["latency max", f"{result.max_ms:.2f} ms"],
        ["server peak RSS", rss],
        ["server CPU", cpu],
        ["generator CPU", f"{result.client_cpu_pct:.0f}%"],
        ["other processes' CPU", f"{result.others_cpu_pct or 0:.0f}%"],
        ["errors", ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "none"],
    ]


def _rate_hint(errors: dict[str, int]) -> str:
    return (" (rate_limited: raise the server's chat.send_rate_per_s and chat.send_burst, and set"
            " chat.frame_rate_per_s to 0)") \
        if "rate_limited" in errors else ""


def bench_command(
    url: list[str] = typer.Option(["http://127.0.0.1:8080"], metavar="URL", help="The running server's base URL; repeat it "
                                  "for several nodes of one site (user i's socket goes to node i mod n)."),
    urls: Optional[str] = typer.Option(None, metavar="URL,URL", help="Several nodes at once, comma-separated (instead of --url)."),
    workload: str = typer.Option("w1", help="w1: pairs of users; w2: one group, one sender."),
    pairs: int = typer.Option(50, min=1, help="W1: pairs of users; one of each pair sends, the other receives."),
    group_size: int = typer.Option(100, min=2, help="W2: members of the group, the sender included."),
    messages: int = typer.Option(200, min=1, help="Messages each sender sends (W2: to the group)."),
    window: int = typer.Option(10, min=1, help="Sends in flight per sender (each waits for its `sent`)."),
    timeout: float = typer.Option(300.0, help="Give up after this many seconds of sending."),
    pid: Optional[int] = typer.Option(None, help="The server's pid, for its CPU and peak RSS (default: found "
                                                 "from each local URL's port, workers included)."),
    password: str = typer.Option(loadgen.PASSWORD, help="Password of the users the benchmark registers."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
) -> None:
    """Run the load generator against a running server and print throughput and latency.

    W1 (the default) registers 2 x PAIRS new users (one scrypt hash each on the server), connects them all, then each sender sends MESSAGES text messages to its partner with at most WINDOW in flight; receivers ack.

    W2 registers GROUP-SIZE new users, creates a group of them, connects them all, then one member sends MESSAGES text messages to the group with at most WINDOW in flight; every other member receives and acks each. It reports deliveries/s (messages x recipients) and fails when a member missed a message, got one twice or out of order. The group must fit the server's chat.max_group_members.

    Run the server with LUCKY_AUTH__IP_RATE_PER_MIN=0, LUCKY_CHAT__FRAME_RATE_PER_S=0, LUCKY_CHAT__MAX_SOCKETS_PER_IP=0 and high LUCKY_CHAT__SEND_RATE_PER_S and LUCKY_CHAT__SEND_BURST, or its limits answer instead (every client is one address, and receivers ack every message).

    Several nodes of one site (same database and Redis): repeat --url, or --urls A,B. Accounts are registered on the first; user i's socket goes to node i mod n, so in W1 the two users of a pair are on different nodes (every message crosses the bus) and a W2 group's members spread over the nodes. CPU and RSS are then the nodes' summed.

    Example: lucky bench --url http://127.0.0.1:8080 --pairs 50 --messages 200 --window 10

    Example: lucky bench --url http://127.0.0.1:8080 --workload w2 --group-size 100 --messages 200

    Example: lucky bench --urls http://127.0.0.1:8080,http://127.0.0.1:8081 --pairs 50
    """
    targets = [u.strip() for u in urls.split(",") if u.strip()] if urls else list(url)
    if not targets:
        raise fail("--urls is empty: give http://HOST:PORT,http://HOST:PORT", 2)
    for target in targets:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise fail(f"--url must look like http://HOST:PORT, not {target!r}", 2)
    workload = workload.lower()
    if workload not in WORKLOADS:
        raise fail(f"--workload must be one of {', '.join(WORKLOADS)}, not {workload!r}", 2)
    pids = [pid] if pid is not None else _local_pids(targets)
    where = ", ".join(targets)
    loadgen.install_event_loop()
    try:
        if workload == "w2":
            _report_w2(where, asyncio.run(_run_w2(targets, group_size, messages, window, timeout, pids, password)),
                       as_json)
        else:
            _report_w1(where, asyncio.run(_run_w1(targets, pairs, messages, window, timeout, pids, password)),
                       as_json)
    except loadgen.BenchError as exc:
        raise fail(str(exc)) from None


def _report_w1(url: str, result: loadgen.W1Result, as_json: bool) -> None:
    if as_json:
        output.out.print_json(json.dumps(result.to_dict()))
    else:
        output.table(f"lucky bench: W1 on {url}", ["measure", "value"], [
            ["delivered", f"{result.delivered:,} of {result.expected:,} ({result.seconds:.2f} s)"],
            ["throughput", f"{result.msgs_per_s:,.0f} msg/s"],
            *_common_rows(result),
        ])
    if result.delivered < result.expected:
        raise fail(f"only {result.delivered} of {result.expected} messages were delivered{_rate_hint(result.errors)}")


def _report_w2(url: str, result: loadgen.W2Result, as_json: bool) -> None:
    if as_json:
        output.out.print_json(json.dumps(result.to_dict()))
    else:
        stored = "not checked" if result.stored is None else f"{result.stored} of {result.messages}"
        output.table(f"lucky bench: W2 on {url}, a group of {result.group_size}", ["measure", "value"], [
            ["delivered", f"{result.delivered:,} of {result.expected:,} "
                          f"({result.messages} messages x {result.group_size - 1} recipients, {result.seconds:.2f} s)"],
            ["throughput", f"{result.deliveries_per_s:,.0f} deliveries/s"],
            ["missing / duplicate / out of order",
             f"{result.missing:,} / {result.duplicates:,} / {result.out_of_order:,}"],
            ["answered `sent` (durable)", f"{result.sent} of {result.messages}"],
            ["found in the group's history", stored],
            *_common_rows(result),
        ])
    if not result.complete:
        raise fail("W2: NOT every member got every message exactly once, in order: "
                   + "; ".join(result.problems()) + _rate_hint(result.errors))
