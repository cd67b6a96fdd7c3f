"""The long fuzz run of issue 9: 100,000 random frames and 10,000 random HTTP bodies against one Lucky.

    .venv/bin/python -m bench.fuzz                                   # Lucky on SQLite, started here
    .venv/bin/python -m bench.fuzz --backend postgres                # on PostgreSQL (a fresh schema)
    .venv/bin/python -m bench.fuzz --frames 10000 --bodies 1000 --queries 250 --seed 7
    .venv/bin/python -m bench.fuzz --url http://127.0.0.1:8080       # a server you started (loopback only)

The inputs are those of the CI fuzz suite (tests/fuzz/strategies.py, Hypothesis), only many
more: JSON bodies of every shape and bytes that are not JSON against every JSON endpoint,
query strings against every GET, then batches of frames from one user's socket (valid ones,
valid but for one field, loose ones, garbage, binary, deep, over 64 KiB) while two other users
talk. Every answer is held to the contract (tests/fuzz/contract.py): no 5xx, errors in the
contract's shape, a fuzzing socket closed only with 1008 or 1009 as the contract says, the
bystanders' messages sent and delivered, every conversation still readable (HTTP history, the
conversation list, `sync` from nothing). Unlike the tests it goes on after a failure: each
one is written, with the input that caused it, to bench/results/fuzz-<time>/findings.jsonl
(for a WebSocket batch, the one frame that does it alone when there is one), and the summary
counts the distinct ones. Bounded in count (--frames, --bodies, --queries) and in time
(--max-seconds), loopback only; exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from tests.fuzz.contract import Broken, check_http_answer, shorten
from tests.fuzz.operations import MAX_URL, Inputs, json_operations, query_operations
from tests.fuzz.readback import assert_readable
from tests.fuzz.served import Client
from tests.fuzz.sockets import FuzzSocket, Sockets, shared_conversations, talk, targets
from tests.fuzz.strategies import Body, WireFrame, bad_runs, content_types, huge_frames, wire_frames
from tests.fuzz.world import World, populate

from .servers import REPO, LuckyInstance, Process

RESULTS = REPO / "bench" / "results"
console = Console(stderr=True, width=150)
FRAMES_PER_BATCH = 10
CHUNK = 500  # examples per Hypothesis run: bounds the memory its choice tree takes
CHECK_EVERY = 10  # batches between the bystanders' exchange and the read-back of shared conversations
KEEP_PER_RULE = 5  # findings written per distinct failure; the rest are counted


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"fuzz: {url} is not a loopback address; this tool only fuzzes a server on this machine")


def _frame_input(frame: WireFrame) -> dict[str, str]:
    if isinstance(frame.data, bytes):
        return {"binary_base64": base64.b64encode(frame.data).decode()}
    return {"text": frame.data}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_LONG_INT = re.compile(r"-?[0-9]{16,}")
_DEPTHS = [(1000, "over 1,000"), (256, "256 to 999"), (33, "33 to 255"), (17, "17 to 32")]


def _kind(frame: WireFrame) -> str:
    """What a frame is, to name a failure by it: its type, and what about it is extreme."""
    if isinstance(frame.data, bytes):
        return "binary frame"
    bare = _STRING.sub('""', frame.data)  # brackets and digits inside strings are text
    depth = level = 0
    for char in bare:
        if char in "[{":
            level += 1
            depth = max(depth, level)
        elif char in "]}":
            level -= 1
    found = re.search(r'"type"\s*:\s*"([a-z.]{1,20})"', frame.data)
    name = f"{found.group(1)} frame" if found else "frame without a type"
    extremes = [f"nested {label} levels" for floor, label in _DEPTHS if depth >= floor][:1]
    if any(abs(int(digits)) > 2**53 - 1 for digits in _LONG_INT.findall(bare)):
        extremes.append("an integer past 2^53")
    return f"{name} ({', '.join(extremes)})" if extremes else name


@dataclass
class Findings:
    """Failures as they are found: every one counted, the first few of each rule written out."""

    path: Path
    by_rule: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)

    def record(self, phase: str, failure: Broken, given: dict[str, Any]) -> None:
        self.by_rule[failure.rule] += 1
        self.first.setdefault(failure.rule, str(failure))
        if self.by_rule[failure.rule] <= KEEP_PER_RULE:
            with self.path.open("a") as out:
                out.write(json.dumps({"phase": phase, "rule": failure.rule, "message": str(failure)[:4000],
                                      "input": given}) + "\n")

    @property
    def total(self) -> int:
        return sum(self.by_rule.values())


@dataclass
class Run:
    """One fuzz run against one server: the phases, their counts, and what failed."""

    world: World
    findings: Findings
    started: float
    deadline: float
    seed: int | None
    statuses: Counter[int] = field(default_factory=Counter)
    queries: Counter[int] = field(default_factory=Counter)
    frames_sent: int = 0
    batches: int = 0
    bystander_messages: int = 0
    synced: dict[str, int] = field(default_factory=dict)
    unanswered: Counter[str] = field(default_factory=Counter)  # inputs that got no answer, by phase
    fuzzer_replies: dict[str, int] = field(default_factory=dict)
    fuzzer_closes: dict[int, int] = field(default_factory=dict)

    def _hypothesis(self, done: Callable[[], int], target: int, per_example: int,
                    test: Callable[..., None]) -> None:
        """Run `test` (a function of `data`) in Hypothesis runs of at most CHUNK examples until
        `done()` reaches `target` or --max-seconds has passed (checked between runs)."""
        chunk_no, before = 0, -1
        while before < done() < target and time.monotonic() < self.deadline:
            before = done()
            count = min(CHUNK, -(-(target - before) // per_example))
            runner = settings(max_examples=count, deadline=None, database=None, phases=(Phase.generate,),
                              suppress_health_check=list(HealthCheck))(given(data=st.data())(test))
            if self.seed is not None:
                runner = seed(self.seed + chunk_no)(runner)
            runner()
            chunk_no += 1
            console.print(f"  {done():,} of {target:,} ({time.monotonic() - self.started:.0f} s; "
                          f"{self.findings.total:,} failures so far)")

    def _unexpected(self, phase: str, exc: Exception, given_input: dict[str, Any]) -> None:
        """A failure of the transport (reset, timeout): a finding too, and the run goes on."""
        self.unanswered[phase] += 1
        self.findings.record(phase, Broken(f"{type(exc).__name__} on the client", f"{type(exc).__name__}: {exc}"),
                             given_input)

    def http_bodies(self, count: int) -> None:
        world, operations, inputs = self.world, json_operations(self.world), Inputs(self.world)
        content = content_types()

        def one(data: st.DataObject) -> None:
            method, template, fields = data.draw(st.sampled_from(operations))
            path = data.draw(inputs.path(template))
            body: Body = data.draw(inputs.body(fields))
            content_type = data.draw(content)
            given_input = {"method": method, "path": path, "content_type": content_type,
                           "body_base64": base64.b64encode(body.data).decode()}
            try:
                status, kind, answer = world.app.send(method, path, body.data, content_type, world.token)
            except Exception as exc:  # noqa: BLE001  (recorded, never hidden)
                self._unexpected("http body", exc, given_input)
                return
            self.statuses[status] += 1
            try:
                check_http_answer(status, kind, answer, f"{method} {path} ({content_type}) with {body!r}")
                if status < 300 and template.endswith("/messages"):
                    assert_readable(world, [unquote(path.split("/")[4])], newest_only=True)
            except Broken as failure:
                self.findings.record("http body", Broken(f"{failure.rule}: {method} {template}", str(failure)),
                                     given_input)

        self._hypothesis(lambda: sum(self.statuses.values()) + self.unanswered["http body"], count, 1, one)

    def http_queries(self, count: int) -> None:
        world, operations, inputs = self.world, query_operations(self.world), Inputs(self.world)

        def one(data: st.DataObject) -> None:
            method, template, names = data.draw(st.sampled_from(operations))
            path = data.draw(inputs.path(template))
            query = data.draw(inputs.query(names))
            target = f"{path}?{query}" if query else path
            if len(target) > MAX_URL:
                self.unanswered["too long"] += 1
                return
            try:
                status, kind, answer = world.app.send(method, target, token=world.token)
            except Exception as exc:  # noqa: BLE001  (recorded, never hidden)
                self._unexpected("http query", exc, {"method": method, "target": target})
                return
            self.queries[status] += 1
            try:
                check_http_answer(status, kind, answer, f"{method} {target}")
            except Broken as failure:
                self.findings.record("http query", Broken(f"{failure.rule}: {method} {template}", str(failure)),
                                     {"method": method, "target": target})

        self._hypothesis(lambda: sum(self.queries.values()) + self.unanswered["http query"], count, 1, one)

    def frames(self, count: int) -> None:
        world, app = self.world, self.world.app
        sockets = Sockets(world)
        app.run(sockets.open())
        shared = shared_conversations(world)
        batch_of = st.lists(wire_frames(targets(world)), min_size=FRAMES_PER_BATCH, max_size=FRAMES_PER_BATCH)

        def one(data: st.DataObject) -> None:
            frames = data.draw(batch_of)
            extra = data.draw(st.integers(0, 49))
            if extra == 0:
                frames.append(data.draw(huge_frames()))
            elif extra == 1:
                frames += data.draw(bad_runs())
            assert sockets.fuzzer is not None and sockets.bob is not None and sockets.cat is not None
            self.frames_sent += len(frames)
            self.batches += 1
            try:
                app.run(sockets.fuzzer.batch(frames))
            except Broken as failure:
                culprit = app.run(self._isolate(sockets, frames))
                if culprit is not None:
                    failure = Broken(f"{failure.rule}, after: {_kind(culprit)}", str(failure))
                self.findings.record("frames", failure, {
                    "frames": [_frame_input(f) for f in frames],
                    "culprit": _frame_input(culprit) if culprit is not None else None})
            except Exception as exc:  # noqa: BLE001  (recorded, never hidden)
                self._unexpected("frames", exc, {"frames": [_frame_input(f) for f in frames]})
                app.run(sockets.fuzzer.connect())
            if self.batches % CHECK_EVERY:
                return
            try:
                app.run(talk(sockets.bob, sockets.cat, world.users["cat"], f"after batch {self.batches}"))
                self.bystander_messages += 1
                status, body = app.call("GET", "/healthz")
                if status != 200:
                    raise Broken(f"/healthz -> {status}", f"after batch {self.batches}: /healthz -> {status} {body}")
                assert_readable(world, shared, newest_only=True)
            except Broken as failure:
                self.findings.record("bystanders", failure, {"last_frames": [_frame_input(f) for f in frames]})
                app.run(sockets.reopen_bystanders())
            except Exception as exc:  # noqa: BLE001  (recorded, never hidden)
                self._unexpected("bystanders", exc, {"last_frames": [_frame_input(f) for f in frames]})
                app.run(sockets.reopen_bystanders())

        try:
            self._hypothesis(lambda: self.frames_sent, count, FRAMES_PER_BATCH, one)
            for name in ("ann", "bob", "cat"):
                try:
                    self.synced[name] = app.run(sockets.sync_all(name), timeout=300)
                except Broken as failure:
                    self.findings.record("read-back", failure, {"user": name})
            try:
                assert_readable(world)
            except Broken as failure:
                self.findings.record("read-back", failure, {})
        finally:
            app.run(sockets.close())
        self.fuzzer_replies = dict(sockets.fuzzer.replies) if sockets.fuzzer else {}
        self.fuzzer_closes = dict(sockets.fuzzer.closes) if sockets.fuzzer else {}

    async def _isolate(self, sockets: Sockets, frames: list[WireFrame]) -> WireFrame | None:
        """The first frame of a failed batch that fails alone on a fresh socket, if one does."""
        assert sockets.http is not None
        for frame in frames:
            probe = FuzzSocket(sockets.http, self.world.app.url, self.world.token)
            await probe.connect()
            try:
                await probe.batch([frame])
            except Broken:
                return frame
            finally:
                await probe.close()
        return None


def _counts(counts: dict[Any, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return ", ".join(f"{name} {count:,}" for name, count in ordered) or "none"


def summary(run: Run, meta: dict[str, Any], out: Path, server: Process | None) -> int:
    elapsed = meta["elapsed_s"]
    console.print(f"[bold]fuzz run[/bold] against {meta['url']} ({meta['backend']}), seed {meta['seed']}, "
                  f"{elapsed:.0f} s")
    requests_total = sum(run.statuses.values()) + sum(run.queries.values())
    console.print(f"HTTP: {sum(run.statuses.values()):,} bodies and {sum(run.queries.values()):,} query strings "
                  f"({requests_total / max(meta['http_s'], 1e-9):,.0f} requests/s)")
    console.print(f"  bodies by status: {_counts(run.statuses)}")
    console.print(f"  query strings by status: {_counts(run.queries)}")
    if run.unanswered:
        console.print(f"  inputs without an answer: {_counts(run.unanswered)}")
    console.print(f"WebSocket: {run.frames_sent:,} frames in {run.batches:,} batches "
                  f"({run.frames_sent / max(meta['ws_s'], 1e-9):,.0f} frames/s), "
                  f"{run.bystander_messages:,} bystander messages sent and delivered, sync from nothing: {run.synced}")
    console.print(f"  replies to the fuzzing socket by type: {_counts(run.fuzzer_replies)}")
    console.print(f"  its closes by code: {_counts(run.fuzzer_closes)}")
    errors = server.errors() if server is not None else []
    if errors:
        (out / "server-errors.log").write_text("\n".join(errors) + "\n")
    if run.findings.total:
        table = Table(title=f"{run.findings.total:,} failures, {len(run.findings.by_rule)} distinct "
                            f"(inputs in {run.findings.path})")
        table.add_column("rule broken")
        table.add_column("count", justify="right")
        table.add_column("first seen")
        for rule, count in run.findings.by_rule.most_common():
            table.add_row(rule, f"{count:,}", shorten(run.findings.first[rule], 160))
        console.print(table)
    else:
        console.print("[green]no failure[/green]")
    console.print(f"server log: {len(errors)} error lines" + (f" (in {out / 'server-errors.log'})" if errors else ""))
    (out / "summary.json").write_text(json.dumps({
        "meta": meta, "bodies_by_status": run.statuses, "queries_by_status": run.queries,
        "frames": run.frames_sent, "batches": run.batches, "bystander_messages": run.bystander_messages,
        "replies_by_type": run.fuzzer_replies, "closes_by_code": run.fuzzer_closes,
        "synced": run.synced, "failures_by_rule": run.findings.by_rule, "server_error_lines": len(errors),
    }, indent=2, default=str))
    console.print(f"summary: {out / 'summary.json'}")
    return 1 if run.findings.total else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="fuzz a running server at this loopback URL instead of starting one")
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite", help="for the server started here")
    p.add_argument("--frames", type=int, default=100_000, help="WebSocket frames to send (default 100,000)")
    p.add_argument("--bodies", type=int, default=10_000, help="HTTP bodies to send (default 10,000)")
    p.add_argument("--queries", type=int, default=2_500, help="query strings to send (default 2,500)")
    p.add_argument("--max-seconds", type=float, default=3600, help="stop each phase where it is after this long")
    p.add_argument("--seed", type=int, default=None, help="Hypothesis seed, to run the same inputs again")
    p.add_argument("--out", type=Path, default=None, help="folder for findings and summary")
    args = p.parse_args(argv)
    out = args.out or RESULTS / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    run_seed = args.seed if args.seed is not None else secrets.randbelow(2**31)

    instance: LuckyInstance | None = None
    server: Process | None = None
    root = Path(tempfile.mkdtemp(prefix="lucky-fuzz-"))
    if args.url:
        require_loopback(args.url)
        url = args.url
    else:
        instance = LuckyInstance(root, args.backend)
        server = instance.serve()  # BENCH_ENV: no per-IP, send-rate or frame limit to hide an input
        url = server.url
    client = Client(url)
    started = time.monotonic()
    try:
        world = populate(client, prefix=f"fz{secrets.token_hex(3)}_" if args.url else "")
        run = Run(world, Findings(out / "findings.jsonl"), started, started + args.max_seconds, run_seed)
        console.print(f"fuzzing {url}: {args.bodies:,} bodies, {args.queries:,} query strings, "
                      f"{args.frames:,} frames; seed {run_seed}; results in {out}")
        http_started = time.monotonic()
        run.http_bodies(args.bodies)
        run.http_queries(args.queries)
        ws_started = time.monotonic()
        run.frames(args.frames)
        meta = {"url": url, "backend": args.backend if not args.url else "external", "seed": run_seed,
                "elapsed_s": time.monotonic() - started, "http_s": ws_started - http_started,
                "ws_s": time.monotonic() - ws_started, "python": sys.version.split()[0],
                "cpus": os.cpu_count()}
        return summary(run, meta, out, server)
    finally:
        client.close()
        if server is not None:
            server.stop()
        if instance is not None:
            instance.remove()


if __name__ == "__main__":
    sys.exit(main())
