"""The scale-out benchmark of issue 13: W1 and W2 on one node, two nodes and `--workers 2`.

    .venv/bin/python -m bench.cluster                       # every scenario, P=50 M=200 W=10 G=100, 3 rounds
    .venv/bin/python -m bench.cluster --scenarios two --rounds 1 --pairs 10 --messages 50

Scenarios (each on its own fresh PostgreSQL schema and its own Redis key prefix, one at a time):
- `one`: one `lucky serve` on PostgreSQL + Redis (the Redis bus, every recipient local);
- `two`: two `lucky serve` processes on different ports, one database, one Redis;
- `workers`: `lucky serve --workers 2` (N processes sharing one port; skipped, and said so,
  when this checkout's `lucky serve` has no `--workers`);
- `sqlite`: one embedded node (SQLite, no Redis), for reference.

The generator spreads the sockets over the nodes (`loadgen.spread`: user i on node i mod n), so
in W1 the two users of each pair are on different nodes and every message crosses the bus;
W2's members spread evenly. Redis is a private `redis-server` on a free port, so its
`INFO commandstats` before and after each round count only the nodes' commands: every command
of the round (sends, deliveries, acks, receipts, and the sockets' connects and disconnects
around it) divided by the messages sent, and the PUBLISH calls alone. Figures are printed as a
table and written as JSON under bench/results/ (not committed); exit 1 when a message was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis
from rich.console import Console
from rich.table import Table

from lucky_cli import loadgen
from lucky_cli.loadgen import W1Result, W2Result

from .seed import seed_users
from .servers import LUCKY, POSTGRES_URL, REPO, LuckyInstance, Process, RedisServer, clean_env, free_port

RESULTS = REPO / "bench" / "results"
SCENARIOS = ("one", "two", "workers", "sqlite")
TITLES = {"one": "1 node, PG + Redis", "two": "2 nodes, PG + Redis",
          "workers": "--workers 2, PG + Redis", "sqlite": "1 node, SQLite"}
console = Console(stderr=True, width=150)


def note(text: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")


class CommandCounter:
    """Redis's own count of the commands it ran (`INFO commandstats`), read through one connection."""

    # Our own reads are not the nodes' traffic.
    OURS = frozenset({"info"})

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.client.ping()  # connects now, so that the connection's handshake is not inside a round

    def snapshot(self) -> dict[str, int]:
        stats: dict[str, Any] = self.client.info("commandstats")
        counts: dict[str, int] = {}
        for key, value in stats.items():
            name = key.removeprefix("cmdstat_")
            if name not in self.OURS:
                counts[name] = int(value["calls"])
        return counts

    def close(self) -> None:
        self.client.close()


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two snapshots, most called first."""
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return dict(sorted(((k, v) for k, v in moved.items() if v > 0), key=lambda kv: -kv[1]))


def has_workers_option() -> bool:
    """Whether this checkout's `lucky serve` takes `--workers` (issue 13 adds it)."""
    done = subprocess.run([*LUCKY, "serve", "--help"], capture_output=True, text=True, env=clean_env(COLUMNS="200"),
                          stdin=subprocess.DEVNULL, timeout=60)
    return "--workers" in done.stdout


@dataclass
class Settings:
    pairs: int = 50
    messages: int = 200
    window: int = 10
    group_size: int = 100
    rounds: int = 3
    timeout: float = 300.0
    idle_s: float = 3.0  # how long the nodes' background Redis traffic is measured before the rounds


@dataclass
class Cluster:
    """The nodes of one scenario, started, with their users logged in and spread over them."""

    scenario: str
    instance: LuckyInstance
    procs: list[Process] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    pairs: list[tuple[loadgen.Endpoint, loadgen.Endpoint]] = field(default_factory=list)
    members: list[loadgen.Endpoint] = field(default_factory=list)
    group_id: str = ""

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
            for line in proc.errors()[:20]:
                console.print(f"[red]{self.scenario}:[/] {line}")
        self.instance.remove()


async def start_cluster(scenario: str, root: Path, settings: Settings, redis_url: str | None,
                        postgres_url: str = POSTGRES_URL) -> Cluster:
    """Init a fresh instance, seed its users, serve the scenario's nodes, log the users in."""
    backend = "sqlite" if scenario == "sqlite" else "postgres"
    cluster = Cluster(scenario, LuckyInstance(root, backend, postgres_url))
    try:
        pair_names = [f"pair{i:05d}" for i in range(2 * settings.pairs)]
        member_names = [f"member{i:05d}" for i in range(settings.group_size)]
        await seed_users(cluster.instance.data_dir, pair_names + member_names, loadgen.PASSWORD)
        env: dict[str, str] = {}
        if backend == "postgres":
            if redis_url is None:
                raise ValueError(f"scenario {scenario} needs Redis")
            env = {"LUCKY_REDIS__URL": redis_url, "LUCKY_REDIS__PREFIX": f"lucky_bench_{uuid.uuid4().hex[:8]}"}
        if scenario == "workers":
            proc = cluster.instance.serve("--workers", "2", port=free_port(), **env)
            cluster.procs.append(proc)
            cluster.urls.append(proc.url)
            cluster.pids = await _workers_of(proc.pid, 2)
        else:
            for node in range(2 if scenario == "two" else 1):
                proc = cluster.instance.serve("--node-id", f"node{node + 1}", **env)
                cluster.procs.append(proc)
                cluster.urls.append(proc.url)
                cluster.pids.append(proc.pid)
        async with loadgen.new_session() as session:
            for url in cluster.urls:
                await _require_ready(session, url)
            pairs = await loadgen.login_users(session, cluster.urls[0], pair_names)
            members = await loadgen.login_users(session, cluster.urls[0], member_names)
            cluster.pairs = loadgen.make_pairs(loadgen.spread(pairs, cluster.urls))
            cluster.members = loadgen.spread(members, cluster.urls)
            cluster.group_id = await loadgen.create_group(session, cluster.members[0], cluster.members,
                                                          f"bench W2 G={settings.group_size}")
    except BaseException:
        cluster.stop()
        raise
    return cluster


async def _readyz(session: Any, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(url + "/readyz") as resp:
        body: dict[str, Any] = await resp.json(content_type=None)
        return resp.status, body


async def _require_ready(session: Any, url: str) -> None:
    """A node that could not reach Redis serves anyway (degraded) on local delivery only: its
    figures would not be the bus's, so the run stops instead."""
    status, body = await _readyz(session, url)
    if status != 200 or body.get("status") != "ready" or not body.get("bus", {}).get("ok", True):
        raise RuntimeError(f"{url}/readyz answered {status}: {json.dumps(body)[:300]}")


async def bus_problems(cluster: Cluster) -> list[str]:
    """The nodes whose bus is not up after the rounds (`/readyz`'s `bus`): their rounds fell back
    to local delivery, so their Redis figures undercount what a healthy bus would send."""
    found = []
    async with loadgen.new_session() as session:
        for url in cluster.urls:
            _, body = await _readyz(session, url)
            bus = body.get("bus") or {}
            if not bus.get("ok", True):
                found.append(f"{body.get('node', url)}: bus {bus.get('detail', 'not ok')}")
    return found


async def _workers_of(pid: int, workers: int, wait_s: float = 15.0) -> list[int]:
    """The supervisor's pid and its workers' (it logs `listening` once every worker listens;
    the wait is for a supervisor that would log it earlier)."""
    deadline = time.monotonic() + wait_s
    while len(loadgen.with_children(pid)) < workers + 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # every worker's bus heartbeat and presence running
    return loadgen.with_children(pid)


def _median(rounds: list[Any], key: str) -> Any:
    return sorted(rounds, key=lambda r: getattr(r, key))[len(rounds) // 2]


@dataclass
class RedisCost:
    """What the nodes asked of Redis: per round, and the two costs that are not per message.

    A round's count holds its messages' commands but also the sockets' connects and disconnects
    (presence: HSET, HDEL, a PUBLISH each) and the nodes' background traffic (heartbeats,
    presence leases). Both are measured apart (`sockets`: connecting and closing the round's
    sockets without sending; `idle_per_s`: the nodes left alone) and taken off for the net
    figures, which are what one more message costs.
    """

    idle_per_s: dict[str, float] = field(default_factory=dict)
    sockets: dict[str, int] = field(default_factory=dict)
    rounds: list[tuple[dict[str, int], float]] = field(default_factory=list)  # (calls by command, seconds)

    def figures(self, sent: int) -> dict[str, Any]:
        total: dict[str, int] = {}
        for calls, _ in self.rounds:
            for name, n in calls.items():
                total[name] = total.get(name, 0) + n
        seconds = sum(s for _, s in self.rounds)

        def net(names: set[str] | None) -> float:
            # Command by command, each floored at 0: the per-socket measure holds a heartbeat or
            # two of its own, which must not eat into another command's count.
            calls = sum(max(0.0, n - len(self.rounds) * self.sockets.get(k, 0) - seconds * self.idle_per_s.get(k, 0))
                        for k, n in total.items() if names is None or k in names)
            return calls / max(sent, 1)

        commands, publish = sum(total.values()), total.get("publish", 0)
        return {"redis_commands": commands, "redis_publish": publish,
                "redis_commands_per_msg": commands / max(sent, 1), "redis_publish_per_msg": publish / max(sent, 1),
                "redis_net_commands_per_msg": net(None), "redis_net_publish_per_msg": net({"publish"}),
                "redis_by_command": dict(sorted(total.items(), key=lambda kv: -kv[1])),
                "redis_socket_commands": self.sockets,
                "redis_idle_commands_per_s": sum(self.idle_per_s.values()), "redis_idle_by_command": self.idle_per_s}


def _row(cluster: Cluster, workload: str, rounds: list[W1Result] | list[W2Result],
         redis_cost: RedisCost | None) -> dict[str, Any]:
    """One table row: the median round's speed, and the Redis commands of every round over
    every message of every round (steadier than one round's)."""
    if workload == "W1":
        median = _median(rounds, "msgs_per_s")
        msgs_per_s, deliveries_per_s = median.msgs_per_s, median.msgs_per_s
    else:
        median = _median(rounds, "deliveries_per_s")
        msgs_per_s = median.sent / median.seconds
        deliveries_per_s = median.deliveries_per_s
    sent = sum(r.sent for r in rounds)
    complete = all(r.complete if isinstance(r, W2Result)
                   else r.sent == r.delivered == r.expected and not r.timed_out for r in rounds)
    row: dict[str, Any] = {
        "scenario": cluster.scenario, "workload": workload, "nodes": len(cluster.urls),
        "processes": len(cluster.pids), "msgs_per_s": msgs_per_s, "deliveries_per_s": deliveries_per_s,
        "p50_ms": median.p50_ms, "p99_ms": median.p99_ms, "server_cpu_pct": median.server_cpu_pct,
        "client_cpu_pct": median.client_cpu_pct, "others_cpu_pct": median.others_cpu_pct,
        "messages_sent": sent, "complete": complete,
        "delivered": sum(r.delivered for r in rounds), "expected": sum(r.expected for r in rounds),
        "redis_commands": None, "redis_publish": None, "redis_commands_per_msg": None,
        "redis_publish_per_msg": None, "redis_net_commands_per_msg": None, "redis_net_publish_per_msg": None,
        "redis_by_command": {}, "redis_idle_commands_per_s": None,
        "median": median.to_dict(), "rounds": [r.to_dict() for r in rounds],
    }
    if redis_cost is not None:
        row.update(redis_cost.figures(sent))
    return row


async def _socket_cost(session: Any, endpoints: list[loadgen.Endpoint], counter: CommandCounter,
                       settle_s: float = 1.0) -> dict[str, int]:
    """The commands of connecting and closing these sockets without a message (presence)."""
    before = counter.snapshot()
    await loadgen.close_all(await loadgen.connect_all(session, endpoints))
    await asyncio.sleep(settle_s)  # the nodes see the closes and drop the presence
    return delta(before, counter.snapshot())


async def measure(cluster: Cluster, settings: Settings, counter: CommandCounter | None) -> list[dict[str, Any]]:
    """A warm-up, the nodes' idle and per-socket Redis traffic, then W1 and W2 rounds in turn."""
    w1: list[W1Result] = []
    w2: list[W2Result] = []
    cost1 = RedisCost() if counter is not None else None
    cost2 = RedisCost() if counter is not None else None
    pair_endpoints = [e for pair in cluster.pairs for e in pair]
    async with loadgen.new_session() as session:
        # The first messages create the conversations and fill the caches.
        await loadgen.run_w1(session, cluster.pairs, 5, settings.window, timeout=settings.timeout)
        await loadgen.run_w2(session, cluster.members, cluster.group_id, 5, settings.window,
                             timeout=settings.timeout)
        if counter is not None and cost1 is not None and cost2 is not None:
            await asyncio.sleep(1.0)  # the warm-up's closes settle
            before = counter.snapshot()
            await asyncio.sleep(settings.idle_s)
            idle = {k: v / settings.idle_s for k, v in delta(before, counter.snapshot()).items()}
            cost1.idle_per_s = cost2.idle_per_s = idle
            cost1.sockets = await _socket_cost(session, pair_endpoints, counter)
            cost2.sockets = await _socket_cost(session, cluster.members, counter)
        for i in range(settings.rounds):
            r1 = await _round(counter, cost1, loadgen.run_w1(
                session, cluster.pairs, settings.messages, settings.window, server_pid=cluster.pids,
                timeout=settings.timeout))
            w1.append(r1)
            _round_note(f"{cluster.scenario} W1 round {i + 1}", r1, cost1)
            r2 = await _round(counter, cost2, loadgen.run_w2(
                session, cluster.members, cluster.group_id, settings.messages, settings.window,
                server_pid=cluster.pids, timeout=settings.timeout))
            w2.append(r2)
            _round_note(f"{cluster.scenario} W2 round {i + 1}", r2, cost2)
    return [_row(cluster, "W1", w1, cost1), _row(cluster, "W2", w2, cost2)]


R = TypeVar("R", W1Result, W2Result)


async def _round(counter: CommandCounter | None, cost: RedisCost | None, workload: Coroutine[Any, Any, R]) -> R:
    """Run one round; with Redis, add the commands it caused and how long it took to `cost`."""
    if counter is None or cost is None:
        return await workload
    before, started = counter.snapshot(), time.perf_counter()
    result = await workload
    await asyncio.sleep(0.5)  # the sockets' closes reach the nodes, as in the per-socket measure
    cost.rounds.append((delta(before, counter.snapshot()), time.perf_counter() - started))
    return result


def _round_note(label: str, result: W1Result | W2Result, cost: RedisCost | None) -> None:
    if isinstance(result, W2Result):
        counts = f"{result.delivered:,}/{result.expected:,} delivered, {result.deliveries_per_s:,.0f} deliveries/s"
    else:
        counts = f"{result.delivered}/{result.expected} delivered, {result.msgs_per_s:,.0f} msg/s"
    redis_calls = ""
    if cost is not None and cost.rounds:
        calls = cost.rounds[-1][0]
        redis_calls = (f", Redis {sum(calls.values()) / max(result.sent, 1):.2f} commands and "
                       f"{calls.get('publish', 0) / max(result.sent, 1):.2f} PUBLISH per message (raw)")
    note(f"{label}: {counts}, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms{redis_calls}")
    if isinstance(result, W2Result) and not result.complete:
        console.print(f"[bold red]{label}: {'; '.join(result.problems())}[/]")


async def run_scenario(scenario: str, root: Path, settings: Settings, redis_url: str | None,
                       postgres_url: str = POSTGRES_URL) -> list[dict[str, Any]]:
    """Start one scenario's nodes, measure them, stop them; its rows (W1 and W2)."""
    note(f"{scenario}: starting {TITLES[scenario]}")
    cluster = await start_cluster(scenario, root, settings, redis_url, postgres_url)
    counter = CommandCounter(redis_url) if redis_url is not None and scenario != "sqlite" else None
    try:
        note(f"{scenario}: nodes {', '.join(cluster.urls)} (pids {', '.join(map(str, cluster.pids))})")
        rows = await measure(cluster, settings, counter)
        problems = await bus_problems(cluster) if counter is not None else []
        for line in problems:
            console.print(f"[bold red]{scenario}: after the rounds, {line}[/]")
        for row in rows:
            row["bus_problems"] = problems
        return rows
    finally:
        if counter is not None:
            counter.close()
        cluster.stop()


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "" if value is None else format(value, fmt)


def table(rows: list[dict[str, Any]], settings: Settings) -> Table:
    out = Table(title=f"Scale-out: W1 {settings.pairs} pairs x {settings.messages} messages, W2 a group of "
                      f"{settings.group_size} x {settings.messages} messages, window {settings.window}, "
                      f"median of {settings.rounds} rounds")
    for col in ("scenario", "workload", "msgs/s", "deliveries/s", "p50 ms", "p99 ms", "server CPU", "gen CPU",
                "other CPU", "Redis cmds/msg", "PUBLISH/msg", "net cmds/msg", "net PUBLISH/msg", "idle cmds/s",
                "all delivered"):
        out.add_column(col, justify="left" if col in ("scenario", "workload") else "right")
    for r in rows:
        out.add_row(TITLES[r["scenario"]], r["workload"], _num(r["msgs_per_s"]), _num(r["deliveries_per_s"]),
                    _num(r["p50_ms"], ".1f"), _num(r["p99_ms"], ".1f"), _num(r["server_cpu_pct"], ".0f") + "%",
                    _num(r["client_cpu_pct"], ".0f") + "%", _num(r["others_cpu_pct"], ".0f") + "%",
                    _num(r["redis_commands_per_msg"], ".3f"), _num(r["redis_publish_per_msg"], ".3f"),
                    _num(r["redis_net_commands_per_msg"], ".3f"),
                    _num(r["redis_net_publish_per_msg"], ".3f"),
                    _num(r["redis_idle_commands_per_s"], ".0f"),
                    ("yes" if r["complete"] else f"[bold red]NO[/] ({r['delivered']}/{r['expected']})")
                    + (" [bold red](bus down)[/]" if r.get("bus_problems") else ""))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", "-P", type=int, default=50, help="W1 pairs (default 50)")
    p.add_argument("--messages", "-M", type=int, default=200,
                   help="W1 messages per sender, W2 messages to the group (default 200)")
    p.add_argument("--window", "-W", type=int, default=10, help="sends in flight per sender (default 10)")
    p.add_argument("--group-size", "-G", type=int, default=100, help="W2 members, the sender included (default 100)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per workload; the median is reported (default 3)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"any of {','.join(SCENARIOS)} (default all), run in that order")
    p.add_argument("--timeout", type=float, default=300, help="seconds a round may take (default 300)")
    p.add_argument("--json", help="where to write the results (default bench/results/cluster-<time>.json)")
    args = p.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(sorted(unknown))}: any of {','.join(SCENARIOS)}")
    if args.group_size < 2:
        p.error("--group-size: a group needs at least 2 members (a sender and a recipient)")
    return args


async def run(args: argparse.Namespace, settings: Settings) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    scenarios = list(args.scenarios)
    if "workers" in scenarios and not has_workers_option():
        skipped.append("workers: this checkout's `lucky serve` has no --workers option")
        scenarios.remove("workers")
    redis_server = RedisServer() if set(scenarios) - {"sqlite"} else None
    try:
        with tempfile.TemporaryDirectory(prefix="lucky-cluster-") as tmp:
            for scenario in scenarios:
                rows += await run_scenario(scenario, Path(tmp), settings,
                                           redis_server.url if redis_server is not None else None)
    finally:
        if redis_server is not None:
            redis_server.stop()
    return rows, skipped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = Settings(args.pairs, args.messages, args.window, args.group_size, args.rounds, args.timeout)
    loadgen.install_event_loop()
    loadgen.raise_open_files(4096)
    rows, skipped = asyncio.run(run(args, settings))
    Console(width=230).print(table(rows, settings))
    for line in skipped:
        console.print(f"[yellow]skipped[/] {line}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = Path(args.json) if args.json else RESULTS / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    meta = {"args": vars(args), "python": sys.version.split()[0], "machine": platform.machine(),
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "skipped": skipped}
    path.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    console.print(f"results: {path}")
    if not all(r["complete"] and not r.get("bus_problems") for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
