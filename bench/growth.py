"""Cost growth (issue 14): the read paths and W1 on a database seeded with 10^7 messages.

    .venv/bin/python -m bench.growth                                  # 10^7 messages, SQLite and PostgreSQL
    .venv/bin/python -m bench.growth --messages 1000000 --backends sqlite --no-w1

For each backend: a fresh Lucky instance is seeded (bench/seed_history.py: a direct conversation
of `--messages` messages, one of `--sync` messages, a user in `--conversations` conversations,
`--others` conversations of other users),
then `lucky serve` runs on it and this process measures, through the HTTP and WebSocket API:

- history: a page of 50 from the newest end, and one from the middle (`before_seq` = half), of
  the big conversation (`GET /api/v1/conversations/{cid}/messages`), `--repeat` calls each;
- sync: `sync` frames from nothing with the protocol's largest limit (1,000), following `more`
  with the cursors the messages give, until the `--sync` messages are all read; total time,
  `--sync-repeat` times;
- the conversation list of the user in `--conversations` conversations (`GET
  /api/v1/conversations`, the default page of 50), `--repeat` calls;
- W1 (bench/run.py's code, rounds taken in turn) against the seeded instance and an empty one.

Then, with the server stopped, the same service calls run in-process on the seeded database
with every statement recorded and explained (bench/plans.py). Figures and plans are printed
and written to bench/results/growth-<time>.json. The seeded databases are deleted at the end
(`--keep` leaves them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.table import Table

from lucky_cli import loadgen
from lucky_server.config import load_config
from lucky_server.core import open_core

from . import plans
from .run import Bench, Target, stop_all
from .run import parse_args as run_args
from .seed_history import GrowthPlan, Seeded, seed_history
from .servers import REPO, LuckyInstance

RESULTS = REPO / "bench" / "results"
SYNC_LIMIT = 1000  # the protocol's largest `sync` limit
PAGE = 50
console = Console(stderr=True, width=150)


@dataclass
class Timing:
    """Repeated calls of one read path."""

    name: str
    backend: str
    calls: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    items: int = 0  # what one call returned (messages, conversations)
    samples_ms: list[float] = field(default_factory=list, repr=False)

    def done(self) -> Timing:
        ordered = sorted(self.samples_ms)
        self.calls = len(ordered)
        self.p50_ms = statistics.median(ordered)
        self.p99_ms = loadgen.percentile(ordered, 99)
        self.max_ms = ordered[-1]
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "samples_ms"}


def note(text: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")


async def _get(session: aiohttp.ClientSession, url: str, token: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.read()
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status != 200:
            raise loadgen.BenchError(f"GET {url} answered {resp.status}: {body[:200]!r}")
    data: dict[str, Any] = orjson.loads(body)
    return elapsed, data


async def time_get(session: aiohttp.ClientSession, name: str, backend: str, url: str, token: str,
                   repeat: int, warm: int = 5) -> Timing:
    """`repeat` sequential GETs (after `warm` unmeasured ones), each timed to its last byte."""
    timing = Timing(name, backend)
    for i in range(warm + repeat):
        elapsed, data = await _get(session, url, token)
        if i >= warm:
            timing.samples_ms.append(elapsed)
            timing.items = len(data["items"])
    return timing.done()


async def sync_all(sock: loadgen.Socket, expected: int) -> tuple[float, int, int]:
    """`sync` from nothing, following `more`; (ms, messages, frames)."""
    cursors: dict[str, int] = {}
    got = frames = 0
    started = time.perf_counter()
    while True:
        frames += 1
        await sock.ws.send_str(orjson.dumps({"type": "sync", "id": frames, "cursors": cursors,
                                             "limit": SYNC_LIMIT}).decode())
        while True:
            reply = orjson.loads((await asyncio.wait_for(sock.ws.receive(), 60)).data)
            if reply.get("type") == "sync.result" and reply.get("id") == frames:
                break
            if reply.get("type") == "error":
                raise loadgen.BenchError(f"sync answered {reply}")
        for m in reply["messages"]:
            cursors[m["conversation_id"]] = max(cursors.get(m["conversation_id"], 0), m["seq"])
        got += len(reply["messages"])
        if not reply["more"]:
            break
    elapsed = (time.perf_counter() - started) * 1000
    if got != expected:
        raise loadgen.BenchError(f"sync read {got} messages, expected {expected}")
    return elapsed, got, frames


async def measure_reads(url: str, backend: str, seeded: Seeded, args: argparse.Namespace) -> list[Timing]:
    async with loadgen.new_session() as session:
        big, syncer, many = await loadgen.login_users(session, url, ["big-a", "sync-a", "many"])
        assert big.token and many.token
        base = url.rstrip("/") + "/api/v1/conversations"
        out = [
            await time_get(session, "history, newest page of 50", backend,
                           f"{base}/{seeded.big}/messages?limit={PAGE}", big.token, args.repeat),
            await time_get(session, "history, a page of 50 from the middle", backend,
                           f"{base}/{seeded.big}/messages?limit={PAGE}&before_seq={args.messages // 2}",
                           big.token, args.repeat),
            await time_get(session, f"conversation list (user in {args.conversations:,}), page of {PAGE}",
                           backend, f"{base}?limit={PAGE}", many.token, args.repeat),
        ]
        timing = Timing(f"sync of {args.sync:,} messages (frames of {SYNC_LIMIT})", backend)
        sock = await loadgen.connect(session, syncer)
        try:
            for i in range(1 + args.sync_repeat):
                elapsed, got, frames = await sync_all(sock, args.sync)
                if i:  # the first is a warm-up
                    timing.samples_ms.append(elapsed)
                    timing.items = got
        finally:
            await sock.ws.close()
        out.append(timing.done())
        for t in out:
            note(f"{backend}: {t.name}: p50 {t.p50_ms:.2f} ms, p99 {t.p99_ms:.2f} ms ({t.calls} calls, "
                 f"{t.items} items)")
        return out


async def explain_reads(data_dir: Path, seeded: Seeded, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the measured service calls in-process on the seeded database, recording and
    explaining every statement they read with."""
    async with open_core(load_config(data_dir, environ={})) as core:
        chat, users = core.chat, seeded.users
        calls: list[tuple[str, Any]] = [
            ("history, newest", lambda: chat.history(users["big-a"], seeded.big, None, None, PAGE)),
            ("history, middle", lambda: chat.history(users["big-a"], seeded.big, args.messages // 2, None, PAGE)),
            ("sync, first frame", lambda: chat.sync(users["sync-a"], {}, SYNC_LIMIT)),
            ("sync, a later frame", lambda: chat.sync(users["sync-a"], {seeded.sync: args.sync // 2}, SYNC_LIMIT)),
            ("conversation list", lambda: chat.conversations(users["many"], None, PAGE)),
        ]
        out = []
        leading = await plans.leading_columns(core.db)
        for name, call in calls:
            with plans.recording(core.db) as statements:
                await call()
            for statement in statements:
                plan = await plans.explain(core.db, statement)
                item = {"path": name, "sql": statement.sql, "plan": plan, "scans": plans.scans(core.db.dialect, plan, leading)}
                if item["scans"] and core.db.dialect == "postgresql":
                    # The planner may rightly scan a small table; whether an index could serve
                    # the statement is what the plan without sequential scans shows.
                    item["plan_with_seqscan_off"] = forced = await plans.explain(core.db, statement, force_index=True)
                    item["scans"] = plans.scans(core.db.dialect, forced, leading)
                out.append(item)
        return out


async def w1(instances: list[tuple[str, LuckyInstance]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """bench/run.py's W1 rounds, taken in turn on each (name, instance)."""
    bench = Bench(run_args(["--workloads", "w1", "--no-relay", "--pairs", str(args.pairs), "--messages",
                            str(args.w1_messages), "--rounds", str(args.rounds)]))
    targets: list[Target] = []
    try:
        for name, instance in instances:
            proc = instance.serve()
            targets.append(Target(name, proc))
            async with loadgen.new_session() as session:
                names = [f"bench{i:05d}" for i in range(2 * args.pairs)]
                targets[-1].endpoints = await loadgen.register_users(session, proc.url, names)
        await bench.interleaved(targets)
    finally:
        stop_all(targets)
    return bench.rows


async def one_backend(backend: str, root: Path, args: argparse.Namespace, report: dict[str, Any]) -> None:
    plan = GrowthPlan(big=args.messages, sync=args.sync, many=args.conversations, others=args.others)
    instance = LuckyInstance(root, backend)
    empty: LuckyInstance | None = None
    try:
        note(f"{backend}: seeding {plan.total:,} messages")
        seeded = await seed_history(instance.data_dir, loadgen.PASSWORD, plan)
        rate = seeded.messages / seeded.seconds
        note(f"{backend}: seeded in {seeded.seconds:.0f} s ({rate:,.0f} messages/s)")
        report["seeding"].append({"backend": backend, "messages": seeded.messages, "seconds": seeded.seconds})
        proc = instance.serve()
        try:
            timings = await measure_reads(proc.url, backend, seeded, args)
        finally:
            proc.stop()
            for line in proc.errors()[:20]:
                console.print(f"[red]{backend}:[/] {line}")
        report["reads"].extend(t.to_dict() for t in timings)
        explained = await explain_reads(instance.data_dir, seeded, args)
        report["plans"][backend] = explained
        for item in explained:
            if item["scans"]:
                console.print(f"[bold red]{backend}: {item['path']}: a scan: {item['scans']}[/]")
        if args.w1:
            empty = LuckyInstance(root, backend)
            rows = await w1([(f"lucky-{backend}, empty", empty),
                             (f"lucky-{backend}, {args.messages:,} stored", instance)], args)
            report["w1"].extend(rows)
    finally:
        if not args.keep:
            instance.remove()
            if empty is not None:
                empty.remove()
        else:
            note(f"{backend}: kept {instance.data_dir}" + (f" (schema {instance.schema})" if instance.schema else ""))


def tables(report: dict[str, Any]) -> list[Table]:
    reads = Table(title="Read paths on the seeded database (through HTTP / WebSocket)")
    for col in ("path", "backend", "calls", "items", "p50 ms", "p99 ms", "max ms"):
        reads.add_column(col, justify="left" if col in ("path", "backend") else "right")
    for r in report["reads"]:
        reads.add_row(r["name"], r["backend"], str(r["calls"]), f"{r['items']:,}", f"{r['p50_ms']:.2f}",
                      f"{r['p99_ms']:.2f}", f"{r['max_ms']:.2f}")
    out = [reads]
    if report["w1"]:
        w1_table = Table(title="W1, empty vs seeded (median round)")
        for col in ("server", "msgs/s", "p50 ms", "p99 ms", "server CPU", "other CPU", "vs empty"):
            w1_table.add_column(col, justify="left" if col == "server" else "right")
        empty_rate = 0.0
        for r in report["w1"]:
            rounds = ", ".join(f"{x['msgs_per_s']:,.0f}" for x in r["rounds"]) if r["rounds"] else ""
            ratio = ""
            if r["server"].endswith("empty"):
                empty_rate = r["msgs_per_s"]
            elif empty_rate:
                ratio = f"{100 * r['msgs_per_s'] / empty_rate:.0f}%"
            w1_table.add_row(f"{r['server']} (rounds {rounds})", f"{r['msgs_per_s']:,.0f}", f"{r['p50_ms']:.1f}",
                             f"{r['p99_ms']:.1f}", f"{r['server_cpu_pct'] or 0:.0f}%",
                             f"{r['others_cpu_pct'] or 0:.0f}%", ratio)
        out.append(w1_table)
    return out


def print_plans(report: dict[str, Any]) -> None:
    for backend, items in report["plans"].items():
        print(f"\n## Query plans, {backend}")
        for item in items:
            print(f"\n-- {item['path']}\n{item['sql']}")
            for line in item["plan"]:
                print(f"    {line}")
            if "plan_with_seqscan_off" in item:
                print("  with enable_seqscan off:")
                for line in item["plan_with_seqscan_off"]:
                    print(f"    {line}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=10_000_000,
                   help="messages in the big conversation (default 10,000,000)")
    p.add_argument("--sync", type=int, default=10_000, help="messages the sync reads (default 10,000)")
    p.add_argument("--conversations", type=int, default=2_000,
                   help="conversations of the user whose list is read (default 2,000)")
    p.add_argument("--others", type=int, default=100_000,
                   help="other people's conversations of one message, among that user's peers (default 100,000)")
    p.add_argument("--repeat", type=int, default=200, help="timed calls of each HTTP read (default 200)")
    p.add_argument("--sync-repeat", type=int, default=10, help="timed full syncs (default 10)")
    p.add_argument("--backends", default="sqlite,postgres", help="default sqlite,postgres")
    p.add_argument("--no-w1", dest="w1", action="store_false", help="skip W1 (empty vs seeded)")
    p.add_argument("--pairs", type=int, default=50, help="W1 pairs (default 50)")
    p.add_argument("--w1-messages", type=int, default=200, help="W1 messages per sender (default 200)")
    p.add_argument("--rounds", type=int, default=3, help="W1 rounds per server, median reported (default 3)")
    p.add_argument("--keep", action="store_true", help="keep the seeded databases (default: delete them)")
    p.add_argument("--dir", help="where to make the instances (default a temporary directory)")
    args = p.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    return args


async def run(args: argparse.Namespace, report: dict[str, Any]) -> None:
    if args.keep:
        root = Path(tempfile.mkdtemp(prefix="lucky-growth-", dir=args.dir))
        for backend in args.backends:
            await one_backend(backend, root, args, report)
        return
    with tempfile.TemporaryDirectory(prefix="lucky-growth-", dir=args.dir) as tmp:
        for backend in args.backends:
            await one_backend(backend, Path(tmp), args, report)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    loadgen.install_event_loop()
    loadgen.raise_open_files(4096)
    report: dict[str, Any] = {"args": vars(args), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "seeding": [], "reads": [], "plans": {}, "w1": []}
    try:
        asyncio.run(run(args, report))
    finally:
        for table in tables(report):
            Console(width=170).print(table)
        print_plans(report)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"growth-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2))
        console.print(f"results: {path}")
    if any(item["scans"] for items in report["plans"].values() for item in items):
        sys.exit(1)


if __name__ == "__main__":
    main()
