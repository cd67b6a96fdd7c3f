"""The benchmark of issues 3 and 4: Lucky (SQLite, PostgreSQL) and the bare relay, side by side, in one run.

    .venv/bin/python -m bench.run                      # W1 50x200 w10, unloaded, W2 G=100,1000, W3 10,000
    .venv/bin/python -m bench.run --pairs 10 --messages 100 --idle 1000 --backends sqlite
    .venv/bin/python -m bench.run --workloads w2 --group-sizes 100,1000 --rounds 3

Workloads (see lucky_cli/loadgen/): W1 (P pairs x M messages, window W), the unloaded point
(one pair, one message in flight), W2 (one group of G members, one sender, M messages, window
W), W3 (N idle authenticated sockets; server RSS before and after). Each server is a
subprocess on a free loopback port; the generator is this process, on one event loop, so on a
2-core machine the server has one core and the generator the other. Prints tables and writes
the results as JSON under bench/results/ (not committed). Exits 1 when a W2 run lost,
duplicated or reordered a delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lucky_cli import loadgen
from lucky_cli.loadgen import W1Result, W2Result

from .seed import seed_users
from .seed_history import GrowthPlan, seed_history
from .servers import REPO, LuckyInstance, Process, start_relay

RESULTS = REPO / "bench" / "results"
console = Console(stderr=True, width=150)


def _median(rounds: list[W1Result]) -> W1Result:
    ordered = sorted(rounds, key=lambda r: r.msgs_per_s)
    return ordered[len(ordered) // 2]


def _median_w2(rounds: list[W2Result]) -> W2Result:
    ordered = sorted(rounds, key=lambda r: r.deliveries_per_s)
    return ordered[len(ordered) // 2]


@dataclass
class Target:
    """A server under benchmark and its clients: W1's pairs, and W2's members per group size."""

    name: str
    proc: Process
    endpoints: list[loadgen.Endpoint] = field(default_factory=list)
    groups: dict[int, tuple[str, list[loadgen.Endpoint]]] = field(default_factory=dict)  # G: (group id, members)


def stop_all(targets: list[Target]) -> None:
    """Stop every server, then show the errors each logged."""
    for t in targets:
        t.proc.stop()
        for line in t.proc.errors()[:20]:
            console.print(f"[red]{t.name}:[/] {line}")


def _merge(slices: list[W1Result]) -> W1Result:
    """One result from the slices of the unloaded point: counts and time summed, latency
    percentiles recomputed from every slice's latencies."""
    merged = W1Result(slices[0].pairs, sum(r.messages for r in slices), slices[0].window,
                      sum(r.expected for r in slices))
    merged.sent = sum(r.sent for r in slices)
    merged.delivered = sum(r.delivered for r in slices)
    merged.seconds = sum(r.seconds for r in slices)
    merged.msgs_per_s = merged.delivered / max(merged.seconds, 1e-9)
    latencies = sorted(x for r in slices for x in r.latencies_ms)
    merged.p50_ms, merged.p95_ms, merged.p99_ms = (loadgen.percentile(latencies, q) for q in (50, 95, 99))
    merged.max_ms = latencies[-1] if latencies else 0.0
    merged.server_peak_rss_mb = max((r.server_peak_rss_mb or 0 for r in slices), default=None)
    merged.server_cpu_pct = statistics.mean(r.server_cpu_pct or 0 for r in slices)
    merged.client_cpu_pct = statistics.mean(r.client_cpu_pct for r in slices)
    merged.others_cpu_pct = statistics.mean(r.others_cpu_pct or 0 for r in slices)
    merged.timed_out = any(r.timed_out for r in slices)
    for r in slices:
        for code, n in r.errors.items():
            merged.errors[code] = merged.errors.get(code, 0) + n
    return merged


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[dict[str, Any]] = []

    def note(self, text: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")

    def _profile_start(self, pid: int, name: str) -> subprocess.Popen[bytes] | None:
        if not self.args.profile:
            return None
        fmt = self.args.profile_format
        out = Path(self.args.profile) / f"{name}.{ {'flamegraph': 'svg', 'raw': 'txt', 'speedscope': 'json'}[fmt] }"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).parent / "py-spy"
        self.note(f"profiling pid {pid} with py-spy into {out}")
        proc = subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
                                 "-o", str(out), "--format", fmt],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let py-spy attach before the load starts
        return proc

    def _profile_stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None:
            proc.send_signal(2)  # SIGINT: py-spy writes the flame graph and exits
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _round_note(self, server: str, label: str, result: W1Result | W2Result) -> None:
        if isinstance(result, W2Result):
            counts = f"{result.delivered:,}/{result.expected:,} delivered, {result.deliveries_per_s:,.0f} deliveries/s"
        else:
            counts = f"{result.delivered}/{result.expected} delivered, {result.msgs_per_s:,.0f} msg/s"
        self.note(f"{server} {label}: {counts}, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
                  f"server CPU {result.server_cpu_pct or 0:.0f}%, generator CPU {result.client_cpu_pct:.0f}%, "
                  f"other processes {result.others_cpu_pct or 0:.0f}%")
        if isinstance(result, W2Result) and not result.complete:
            console.print(f"[bold red]{server} {label}: NOT EVERY MESSAGE DELIVERED EXACTLY ONCE: "
                          f"{'; '.join(result.problems())}[/]")

    async def interleaved(self, targets: list[Target]) -> None:
        """Rounds (and unloaded slices) taken in turn on every server, so that whatever else
        the machine is doing weighs on each of them alike and the ratio stays fair."""
        args = self.args
        async with loadgen.new_session() as session:
            if {"w1", "unloaded"} & set(args.workloads):
                for t in targets:
                    # A short warm-up: the first messages create conversations and fill caches.
                    await loadgen.run_w1(session, loadgen.make_pairs(t.endpoints), 5, args.window,
                                         timeout=args.timeout)
            if "w1" in args.workloads:
                await self.w1_rounds(session, targets)
            if "unloaded" in args.workloads:
                await self.unloaded(session, targets)
            if "w2" in args.workloads:
                await self.w2_rounds(session, targets)

    async def w1_rounds(self, session: Any, targets: list[Target]) -> None:
        args = self.args
        rounds: dict[str, list[W1Result]] = {t.name: [] for t in targets}
        for i in range(args.rounds):
            for t in targets:
                spy = self._profile_start(t.proc.pid, f"{t.name}-w1-{i + 1}") if i == 0 else None
                try:
                    result = await loadgen.run_w1(session, loadgen.make_pairs(t.endpoints), args.messages,
                                                  args.window, server_pid=t.proc.pid, timeout=args.timeout)
                finally:
                    self._profile_stop(spy)
                rounds[t.name].append(result)
                self._round_note(t.name, f"W1 round {i + 1}", result)
        for t in targets:
            self.add("W1", t.name, _median(rounds[t.name]), rounds[t.name])

    async def unloaded(self, session: Any, targets: list[Target]) -> None:
        args = self.args
        unloaded: dict[str, list[W1Result]] = {t.name: [] for t in targets}
        slices = max(1, args.rounds)
        for i in range(slices):
            for t in targets:
                result = await loadgen.run_w1(session, loadgen.make_pairs(t.endpoints)[:1],
                                              max(1, args.unloaded_messages // slices), 1,
                                              server_pid=t.proc.pid, timeout=args.timeout)
                unloaded[t.name].append(result)
                self._round_note(t.name, f"unloaded slice {i + 1}", result)
        for t in targets:
            self.add("unloaded", t.name, _merge(unloaded[t.name]), unloaded[t.name])

    async def w2_rounds(self, session: Any, targets: list[Target]) -> None:
        """W2 for each group size: a warm-up, then the rounds in turn on every server."""
        args = self.args
        for size in args.group_sizes:
            for t in targets:
                group_id, members = t.groups[size]
                await loadgen.run_w2(session, members, group_id, 5, args.window, timeout=args.timeout)
            await asyncio.sleep(1.0)  # let the servers settle (closing sockets, WAL checkpoints) before measuring
            rounds: dict[str, list[W2Result]] = {t.name: [] for t in targets}
            for i in range(args.rounds):
                for t in targets:
                    group_id, members = t.groups[size]
                    spy = self._profile_start(t.proc.pid, f"{t.name}-w2-g{size}-{i + 1}") if i == 0 else None
                    try:
                        result = await loadgen.run_w2(session, members, group_id, args.messages, args.window,
                                                      server_pid=t.proc.pid, timeout=args.timeout)
                    finally:
                        self._profile_stop(spy)
                    rounds[t.name].append(result)
                    self._round_note(t.name, f"W2 G={size} round {i + 1}", result)
            for t in targets:
                median = _median_w2(rounds[t.name])
                self.rows.append({"workload": "W2", "server": t.name, **median.to_dict(),
                                  "rounds": [r.to_dict() for r in rounds[t.name]]})

    def add(self, workload: str, server: str, result: W1Result, rounds: list[W1Result]) -> None:
        self.rows.append({"workload": workload, "server": server, **result.to_dict(),
                          "rounds": [r.to_dict() for r in rounds] if len(rounds) > 1 else []})

    async def live_workloads(self, root: Path) -> None:
        """Start the relay and every Lucky backend, set up their clients, then run W1, the
        unloaded point and W2 on them in turn."""
        args = self.args
        pairs = bool({"w1", "unloaded"} & set(args.workloads))
        sizes = args.group_sizes if "w2" in args.workloads else []
        targets: list[Target] = []
        instances: list[LuckyInstance] = []
        try:
            if args.relay:
                relay = start_relay()
                target = Target("relay", relay)
                targets.append(target)
                self.note(f"relay on {relay.url} (pid {relay.pid})")
                if pairs:
                    target.endpoints = loadgen.relay_endpoints(relay.url, 2 * args.pairs)
                for size in sizes:
                    # One set of users per group: the relay learns a group from its members' sockets.
                    group = f"w2g{size}"
                    target.groups[size] = (group, loadgen.relay_endpoints(relay.url, size, f"g{size}m", [group]))
            for backend in args.backends:
                name = f"lucky-{backend}"
                instance = LuckyInstance(root, backend)
                instances.append(instance)
                if args.seed_messages:
                    self.note(f"{name}: seeding {args.seed_messages:,} messages (bench/seed_history.py)")
                    seeded = await seed_history(instance.data_dir, loadgen.PASSWORD,
                                                GrowthPlan(big=args.seed_messages, sync=0, many=0))
                    self.note(f"{name}: seeded in {seeded.seconds:.0f} s")
                members = [f"member{i:05d}" for i in range(max(sizes, default=0))]
                if members:
                    self.note(f"{name}: seeding {len(members)} group members through UserStore")
                    await seed_users(instance.data_dir, members, loadgen.PASSWORD)
                proc = instance.serve()
                target = Target(name, proc)
                targets.append(target)
                self.note(f"{name} on {proc.url} (pid {proc.pid})")
                async with loadgen.new_session() as session:
                    if pairs:
                        self.note(f"{name}: registering {2 * args.pairs} users")
                        names = [f"bench{i:05d}" for i in range(2 * args.pairs)]
                        target.endpoints = await loadgen.register_users(session, proc.url, names)
                    if members:
                        self.note(f"{name}: {len(members)} logins, groups of {', '.join(map(str, sizes))}")
                        logged_in = await loadgen.login_users(session, proc.url, members)
                        for size in sizes:
                            group_id = await loadgen.create_group(session, logged_in[0], logged_in[:size],
                                                                  f"bench W2 G={size}")
                            target.groups[size] = (group_id, logged_in[:size])
            await self.interleaved(targets)
        finally:
            stop_all(targets)
            for instance in instances:
                instance.remove()

    async def relay_idle(self) -> None:
        proc = start_relay()
        try:
            async with loadgen.new_session() as session:
                await self.idle("relay", proc, session, loadgen.relay_endpoints(proc.url, self.args.idle, "idle"))
        finally:
            proc.stop()

    async def lucky_idle(self, backend: str, root: Path) -> None:
        name = f"lucky-{backend}"
        instance = LuckyInstance(root, backend)
        try:
            count = self.args.idle
            names = [f"idle{i:05d}" for i in range(count)]
            self.note(f"{name}: seeding {count} accounts through UserStore")
            await seed_users(instance.data_dir, names, loadgen.PASSWORD)
            proc = instance.serve()
            try:
                async with loadgen.new_session() as session:
                    started = time.perf_counter()
                    endpoints = await loadgen.login_users(session, proc.url, names)
                    self.note(f"{name}: {count} logins over HTTP in {time.perf_counter() - started:.1f} s")
                    await self.idle(name, proc, session, endpoints)
            finally:
                proc.stop()
                for line in proc.errors()[:20]:
                    console.print(f"[red]{name}:[/] {line}")
        finally:
            instance.remove()

    async def idle(self, server: str, proc: Process, session: Any, endpoints: list[loadgen.Endpoint]) -> None:
        result = await loadgen.run_idle(session, endpoints, proc.pid)
        self.note(f"{server} W3: {result.sockets} idle sockets, RSS {result.rss_before_mb:.1f} -> "
                  f"{result.rss_after_mb:.1f} MB, {result.kb_per_socket:.1f} KB per socket "
                  f"(connected in {result.connect_seconds:.1f} s)")
        self.rows.append({"workload": "W3", "server": server, **result.to_dict()})

    async def run(self) -> None:
        args = self.args
        loadgen.raise_open_files(max(4096, args.idle + 1024))
        with tempfile.TemporaryDirectory(prefix="lucky-bench-") as tmp:
            root = Path(tmp)
            if {"w1", "unloaded", "w2"} & set(args.workloads):
                await self.live_workloads(root)
            if "idle" in args.workloads:
                if args.relay:
                    await self.relay_idle()
                for backend in args.idle_backends:
                    await self.lucky_idle(backend, root)

    def tables(self) -> list[Table]:
        tables = [self.table()] if any(r["workload"] != "W2" for r in self.rows) else []
        if any(r["workload"] == "W2" for r in self.rows):
            tables.append(self.w2_table())
        return tables

    def lossy(self) -> list[str]:
        """The W2 rows (medians or any of their rounds) where a delivery was lost, doubled or reordered."""
        found = []
        for r in self.rows:
            if r["workload"] == "W2":
                for one in r["rounds"] or [r]:
                    if not one["complete"]:
                        found.append(f"{r['server']} G={r['group_size']}: {'; '.join(one['problems'])}")
        return found

    def w2_table(self) -> Table:
        ceiling = {r["group_size"]: r for r in self.rows if r["workload"] == "W2" and r["server"] == "relay"}
        table = Table(title=f"W2: one group of G members, one sender, {self.args.messages} messages, "
                            f"window {self.args.window}; deliveries = messages x (G - 1)")
        for col in ("G", "server", "deliveries/s", "p50 ms", "p95 ms", "p99 ms", "peak RSS MB", "server CPU",
                    "gen CPU", "other CPU", "every delivery once, in order", "stored", "lucky/ceiling"):
            table.add_column(col, justify="left" if col in ("server", "every delivery once, in order") else "right")
        for r in self.rows:
            if r["workload"] != "W2":
                continue
            base = ceiling.get(r["group_size"])
            ratio = ""
            if base is not None and r["server"] != "relay" and base["deliveries_per_s"]:
                ratio = f"{100 * r['deliveries_per_s'] / base['deliveries_per_s']:.0f}%"
                if r["rounds"] and len(r["rounds"]) == len(base["rounds"]):
                    per_round = [f"{100 * a['deliveries_per_s'] / max(b['deliveries_per_s'], 1e-9):.0f}"
                                 for a, b in zip(r["rounds"], base["rounds"])]
                    ratio += f" ({', '.join(per_round)})"
            rounds = r["rounds"] or [r]
            ok = all(one["complete"] for one in rounds)
            check = f"yes, in {len(rounds)} of {len(rounds)} rounds" if ok else "[bold red]NO[/]: " + "; ".join(
                f"round {i + 1}: {', '.join(one['problems'])}" for i, one in enumerate(rounds) if not one["complete"])
            stored = "" if r["stored"] is None else f"{r['stored']}/{r['messages']}"
            table.add_row(f"{r['group_size']:,}", r["server"], f"{r['deliveries_per_s']:,.0f}", f"{r['p50_ms']:.1f}",
                          f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['server_peak_rss_mb'] or 0:.1f}",
                          f"{r['server_cpu_pct'] or 0:.0f}%", f"{r['client_cpu_pct']:.0f}%",
                          f"{r['others_cpu_pct'] or 0:.0f}%", check, stored, ratio)
        return table

    def table(self) -> Table:
        ceiling = {r["workload"]: r for r in self.rows if r["server"] == "relay"}
        table = Table(title=f"Lucky benchmark: W1 {self.args.pairs} pairs x {self.args.messages} messages, "
                            f"window {self.args.window}; unloaded: 1 pair, window 1")
        for col in ("workload", "server", "msgs/s", "p50 ms", "p95 ms", "p99 ms", "peak RSS MB",
                    "server CPU", "gen CPU", "other CPU", "lucky/ceiling"):
            table.add_column(col, justify="left" if col in ("workload", "server") else "right")
        for r in self.rows:
            if r["workload"] in ("W2", "W3"):
                continue
            base = ceiling.get(r["workload"])
            ratio = ""
            if r["workload"] == "W1" and base is not None and r["server"] != "relay" and base["msgs_per_s"]:
                ratio = f"{100 * r['msgs_per_s'] / base['msgs_per_s']:.0f}%"
            lost = "" if r["delivered"] == r["expected"] else f" ({r['delivered']}/{r['expected']})"
            table.add_row(r["workload"], r["server"] + lost, f"{r['msgs_per_s']:,.0f}", f"{r['p50_ms']:.2f}",
                          f"{r['p95_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['server_peak_rss_mb'] or 0:.1f}",
                          f"{r['server_cpu_pct'] or 0:.0f}%", f"{r['client_cpu_pct']:.0f}%",
                          f"{r['others_cpu_pct'] or 0:.0f}%", ratio)
        for r in self.rows:
            if r["workload"] == "W3":
                table.add_row(f"W3 idle x {r['sockets']:,}", r["server"], "", "", "", "",
                              f"{r['rss_before_mb']:.1f} -> {r['rss_after_mb']:.1f}", "", "", "",
                              f"{r['kb_per_socket']:.1f} KB/socket")
        return table

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = Path(self.args.json) if self.args.json else RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
        meta = {"args": {k: v for k, v in vars(self.args).items()}, "python": sys.version.split()[0],
                "machine": platform.machine(), "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
        path.write_text(json.dumps({"meta": meta, "results": self.rows}, indent=2))
        return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", "-P", type=int, default=50, help="W1 pairs (default 50)")
    p.add_argument("--messages", "-M", type=int, default=200, help="W1 messages per sender, W2 messages to the group (default 200)")
    p.add_argument("--window", "-W", type=int, default=10, help="W1 and W2 sends in flight per sender (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="W1 and W2 rounds per server; the median is reported (default 3)")
    p.add_argument("--unloaded-messages", type=int, default=2000, help="messages of the unloaded point (default 2000)")
    p.add_argument("--idle", "-N", type=int, default=10000, help="W3 idle sockets (default 10000)")
    p.add_argument("--backends", default="sqlite,postgres", help="Lucky backends for W1 (default sqlite,postgres)")
    p.add_argument("--idle-backends", default="sqlite", help="Lucky backends for W3 (default sqlite)")
    p.add_argument("--group-sizes", "-G", default="100,1000",
                   help="W2 group sizes, members counting the sender (default 100,1000); W2 sends --messages "
                        "messages with --window in flight")
    p.add_argument("--workloads", default="w1,unloaded,w2,idle",
                   help="any of w1,unloaded,w2,idle (default all)")
    p.add_argument("--seed-messages", type=int, default=0,
                   help="before each Lucky server starts, seed its database with a conversation of this "
                        "many messages (bench/seed_history.py; default 0: an empty database)")
    p.add_argument("--no-relay", dest="relay", action="store_false", help="skip the ceiling")
    p.add_argument("--timeout", type=float, default=300, help="seconds a W1 or W2 round may take (default 300)")
    p.add_argument("--profile", metavar="DIR",
                   help="record a py-spy flame graph of each server's first W1 round and first W2 round "
                        "(per group size) into DIR")
    p.add_argument("--profile-format", default="flamegraph", choices=["flamegraph", "raw", "speedscope"],
                   help="py-spy output format (default flamegraph; raw gives collapsed stacks)")
    p.add_argument("--json", help="where to write the results (default bench/results/run-<time>.json)")
    args = p.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    args.idle_backends = [b for b in args.idle_backends.split(",") if b]
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.group_sizes = [int(g) for g in args.group_sizes.split(",") if g]
    unknown = set(args.workloads) - {"w1", "unloaded", "w2", "idle"}
    if unknown:
        p.error(f"unknown workload(s) {', '.join(sorted(unknown))}: any of w1,unloaded,w2,idle")
    if any(g < 2 for g in args.group_sizes):
        p.error("--group-sizes: a group needs at least 2 members (a sender and a recipient)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench = Bench(args)
    loadgen.install_event_loop()
    try:
        asyncio.run(bench.run())
    finally:
        if bench.rows:
            for table in bench.tables():
                Console(width=170).print(table)
            console.print(f"results: {bench.save()}")
    if not bench.rows:
        sys.exit(1)
    lossy = bench.lossy()
    if lossy:
        for line in lossy:
            console.print(f"[bold red]W2 LOST, DUPLICATED OR REORDERED DELIVERIES: {line}[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
