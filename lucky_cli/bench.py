"""`lucky bench`: run workload W1 against a running server and print throughput and latency.

The generator itself is `lucky_cli.loadgen`, shared with `bench/run.py` (which also starts
the servers and the ceiling relay).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Optional
from urllib.parse import urlsplit

import typer

from . import loadgen, output
from .output import fail


async def _run(url: str, pairs: int, messages: int, window: int, timeout: float, pid: int | None,
               password: str) -> loadgen.W1Result:
    loadgen.raise_open_files(4 * pairs + 256)
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    async with loadgen.new_session() as session:
        with output.err.status(f"registering {2 * pairs} users on {url}"):
            endpoints = await loadgen.register_users(session, url, [f"{prefix}{i}" for i in range(2 * pairs)],
                                                     password)
        with output.err.status(f"W1: {pairs} pairs x {messages} messages, window {window}"):
            return await loadgen.run_w1(session, loadgen.make_pairs(endpoints), messages, window,
                                        server_pid=pid, timeout=timeout)


def bench_command(
    url: str = typer.Option("http://127.0.0.1:8080", help="The running server's base URL."),
    pairs: int = typer.Option(50, min=1, help="Pairs of users; one of each pair sends, the other receives."),
    messages: int = typer.Option(200, min=1, help="Messages each sender sends."),
    window: int = typer.Option(10, min=1, help="Sends in flight per sender (each waits for its `sent`)."),
    timeout: float = typer.Option(300.0, help="Give up after this many seconds of sending."),
    pid: Optional[int] = typer.Option(None, help="The server's pid, for its CPU and peak RSS "
                                                 "(default: found from the port when the server is local)."),
    password: str = typer.Option(loadgen.PASSWORD, help="Password of the users the benchmark registers."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
) -> None:
    """Run the load generator (workload W1) against a running server and print throughput and latency.

    It registers 2 x PAIRS new users (one scrypt hash each on the server), connects them all, then each sender sends MESSAGES text messages to its partner with at most WINDOW in flight; receivers ack.

    Run the server with LUCKY_AUTH__IP_RATE_PER_MIN=0 and high LUCKY_CHAT__SEND_RATE_PER_S and LUCKY_CHAT__SEND_BURST, or its limits answer instead.

    Example: lucky bench --url http://127.0.0.1:8080 --pairs 50 --messages 200 --window 10
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail(f"--url must look like http://HOST:PORT, not {url!r}", 2)
    if pid is None and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        pid = loadgen.find_listening_pid(parts.port or (443 if parts.scheme == "https" else 80))
    loadgen.install_event_loop()
    try:
        result = asyncio.run(_run(url, pairs, messages, window, timeout, pid, password))
    except loadgen.BenchError as exc:
        raise fail(str(exc)) from None
    if as_json:
        output.out.print_json(json.dumps(result.to_dict()))
    else:
        rss = f"{result.server_peak_rss_mb:.1f} MB" if result.server_peak_rss_mb is not None else "n/a"
        cpu = f"{result.server_cpu_pct:.0f}%" if result.server_cpu_pct is not None else "n/a"
        output.table(f"lucky bench: W1 on {url}", ["measure", "value"], [
            ["delivered", f"{result.delivered:,} of {result.expected:,} ({result.seconds:.2f} s)"],
            ["throughput", f"{result.msgs_per_s:,.0f} msg/s"],
            ["latency p50 / p95 / p99", f"{result.p50_ms:.2f} / {result.p95_ms:.2f} / {result.p99_ms:.2f} ms"],
            ["latency max", f"{result.max_ms:.2f} ms"],
            ["server peak RSS", rss],
            ["server CPU", cpu],
            ["generator CPU", f"{result.client_cpu_pct:.0f}%"],
            ["other processes' CPU", f"{result.others_cpu_pct or 0:.0f}%"],
            ["errors", ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "none"],
        ])
    if result.delivered < result.expected:
        hint = " (rate_limited: raise the server's chat.send_rate_per_s and chat.send_burst)" \
            if "rate_limited" in result.errors else ""
        raise fail(f"only {result.delivered} of {result.expected} messages were delivered{hint}")
