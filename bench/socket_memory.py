"""Where an idle socket's memory goes: Lucky against the relay, line by line (issue 14, W3).

    .venv/bin/python -m bench.socket_memory                 # 2,000 sockets each, the top 30 lines
    .venv/bin/python -m bench.socket_memory --sockets 500 --top 50

W3 (bench/run.py) says how much an idle socket costs (RSS); this says where. Each server runs
under tracemalloc, started by a signal once it is up and its accounts are logged in (so the
start-up's allocations are not counted); a snapshot is taken before the sockets connect and
one after (a second signal each), and the two are compared by the line that allocated. The
lines where Lucky keeps more per socket than the relay come first. Python's allocations only:
RSS adds the allocator's own overhead (about 0.7 KB per socket on both servers).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import re
import runpy
import signal
import sys
import tempfile
import tracemalloc
from pathlib import Path
from types import FrameType

import aiohttp
from rich.console import Console
from rich.table import Table

from lucky_cli import loadgen

from .seed import seed_users
from .servers import BENCH_ENV, REPO, LuckyInstance, Process, clean_env

console = Console(stderr=True)
CHILD = "--traced-child"  # argv[1] of the server process this module starts
SNAPSHOT_WAIT_S = 20.0  # a snapshot of a few hundred MB of traces takes seconds


def _traced_child(snapshot_dir: str, argv: list[str]) -> None:
    """Run a server (`relay ARGS` or `lucky ARGS`) whose SIGUSR1 starts tracing the first time
    and writes a snapshot (snap-0, snap-1, ...) every time."""
    numbers = itertools.count()

    def snapshot(signum: int, frame: FrameType | None) -> None:
        gc.collect()
        if not tracemalloc.is_tracing():
            tracemalloc.start(1)
        path = Path(snapshot_dir) / f"snap-{next(numbers)}"
        tracemalloc.take_snapshot().dump(str(path))
        sys.stderr.write(f"snapshot {path}\n")
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, snapshot)
    if argv[0] == "relay":
        sys.argv = [str(REPO / "bench" / "relay.py"), *argv[1:]]
        runpy.run_path(sys.argv[0], run_name="__main__")
    else:
        from lucky_cli.main import run

        sys.argv = ["lucky", *argv[1:]]
        run()


async def _snapshots(proc: Process, endpoints: list[loadgen.Endpoint], session: aiohttp.ClientSession,
                     snapshot_dir: Path) -> None:
    """Snapshot before the sockets connect and once they have settled, then close them."""
    for path in snapshot_dir.glob("snap-*"):
        path.unlink()
    os.kill(proc.pid, signal.SIGUSR1)
    await _wait_for(snapshot_dir / "snap-0")
    sockets = await loadgen.connect_all(session, endpoints)
    try:
        await asyncio.sleep(2.0)
        os.kill(proc.pid, signal.SIGUSR1)
        await _wait_for(snapshot_dir / "snap-1")
    finally:
        await loadgen.close_all(sockets)


async def _wait_for(path: Path) -> None:
    for _ in range(int(SNAPSHOT_WAIT_S * 10)):
        if path.exists() and path.stat().st_size > 0:
            await asyncio.sleep(0.5)  # written whole
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no snapshot {path} after {SNAPSHOT_WAIT_S:.0f} s")


def _per_socket(snapshot_dir: Path, sockets: int) -> dict[str, float]:
    """Bytes per socket kept after the sockets connected, by the line that allocated them."""
    before = tracemalloc.Snapshot.load(str(snapshot_dir / "snap-0"))
    after = tracemalloc.Snapshot.load(str(snapshot_dir / "snap-1"))
    found: dict[str, float] = {}
    for stat in after.compare_to(before, "lineno"):
        frame = stat.traceback[0]
        line = f"{_short(frame.filename)}:{frame.lineno}"
        found[line] = found.get(line, 0.0) + stat.size_diff / sockets
    return found


def _short(filename: str) -> str:
    """A path as short as still says whose line it is: `aiohttp/...`, `server/...`, `asyncio/...`."""
    for prefix in ("site-packages/", str(REPO) + "/"):
        if prefix in filename:
            return filename.split(prefix, 1)[1]
    return re.sub(r".*/lib/python3\.\d+/", "", filename)


async def _relay(sockets: int, snapshot_dir: Path) -> dict[str, float]:
    proc = Process("relay", [sys.executable, "-m", "bench.socket_memory", CHILD, str(snapshot_dir), "relay",
                             "--port", "0"], clean_env())
    try:
        proc.wait_listening()
        async with loadgen.new_session() as session:
            await _snapshots(proc, loadgen.relay_endpoints(proc.url, sockets, "idle"), session, snapshot_dir)
    finally:
        proc.stop()
    return _per_socket(snapshot_dir, sockets)


async def _lucky(sockets: int, root: Path, snapshot_dir: Path) -> dict[str, float]:
    instance = LuckyInstance(root, "sqlite")
    names = [f"idle{i:05d}" for i in range(sockets)]
    try:
        await seed_users(instance.data_dir, names, loadgen.PASSWORD)
        argv = [sys.executable, "-m", "bench.socket_memory", CHILD, str(snapshot_dir), "lucky", "serve",
                "--data-dir", str(instance.data_dir), "--port", "0"]
        proc = Process("lucky", argv, clean_env(**BENCH_ENV))
        try:
            proc.wait_listening()
            async with loadgen.new_session() as session:
                endpoints = await loadgen.login_users(session, proc.url, names)
                await _snapshots(proc, endpoints, session, snapshot_dir)
        finally:
            proc.stop()
    finally:
        instance.remove()
    return _per_socket(snapshot_dir, sockets)


async def measure(sockets: int) -> tuple[dict[str, float], dict[str, float]]:
    """Bytes kept per idle socket by each line: (Lucky on SQLite, the relay)."""
    loadgen.raise_open_files(sockets + 1024)
    with tempfile.TemporaryDirectory(prefix="lucky-socket-memory-") as tmp:
        root = Path(tmp)
        (root / "relay").mkdir()
        (root / "lucky").mkdir()
        console.print(f"relay: {sockets} sockets under tracemalloc")
        relay = await _relay(sockets, root / "relay")
        console.print(f"lucky (SQLite): {sockets} sockets under tracemalloc")
        lucky = await _lucky(sockets, root, root / "lucky")
    return lucky, relay


async def main(args: argparse.Namespace) -> None:
    lucky, relay = await measure(args.sockets)
    table = Table(title=f"Python's allocations kept per idle socket ({args.sockets:,} sockets): "
                        f"Lucky {sum(lucky.values()):,.0f} B, relay {sum(relay.values()):,.0f} B")
    for column in ("Lucky - relay", "Lucky", "relay", "line"):
        table.add_column(column, justify="left" if column == "line" else "right")
    lines = sorted(set(lucky) | set(relay), key=lambda line: relay.get(line, 0.0) - lucky.get(line, 0.0))
    for line in lines[:args.top]:
        ours, theirs = lucky.get(line, 0.0), relay.get(line, 0.0)
        table.add_row(f"{ours - theirs:,.0f}", f"{ours:,.0f}", f"{theirs:,.0f}", line)
    Console(width=max(120, Console().width)).print(table)


def cli() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == CHILD:
        _traced_child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", "-N", type=int, default=2000, help="idle sockets on each server (default 2000)")
    parser.add_argument("--top", type=int, default=30, help="lines shown, most bytes over the relay first (default 30)")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
