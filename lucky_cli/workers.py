"""`lucky serve --workers N`: N server processes sharing one port, supervised by this process.

Each worker is a plain `lucky serve` (its own node on the bus, named `<node>-w<k>`) listening
with SO_REUSEPORT, so the kernel spreads new connections over them and a bigger machine uses
its cores. The parent applies the migrations once, starts the workers, relays their logs,
restarts one that dies (with a backoff, so a crash loop does not spin), and on SIGTERM or
SIGINT passes the signal on and waits for every worker to drain.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lucky_server.clock import Clock
from lucky_server.config import Config
from lucky_server.core import database_for, node_name
from lucky_server.runner import ServeError, bind_free_port
from lucky_server.storage.migrate import migrate

log = logging.getLogger("lucky.workers")

_LISTENING = re.compile(r"listening on http://")
# A worker up this long has recovered: its next death starts the backoff again from the bottom.
_HEALTHY_AFTER_S = 30.0
# On top of the workers' own drain (server.shutdown_timeout_s): closing the database and Redis.
_STOP_MARGIN_S = 10.0


def refusal(config: Config) -> str | None:
    """Why this instance cannot run several workers, or None when it can.

    Several processes need a database they can all write (PostgreSQL, not the embedded
    SQLite file) and Redis, through which a message reaches a socket held by another worker.
    """
    database = urlsplit(config.database.url).scheme
    if database not in {"postgresql", "postgres"} or not config.redis.url:
        return ("--workers above 1 needs database.url on PostgreSQL and redis.url set "
                "(see docs/scaling.md, \"Several processes on one machine\"); or run one process")
    return None


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a worker that died `failures` times in a row (>= 1):
    0.5 s, then doubling up to 30 s."""
    return float(min(30.0, 0.5 * 2 ** max(0, failures - 1)))


def exit_described(code: int) -> str:
    """A worker's exit status in words (`asyncio` reports death by signal N as -N)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def die_with_parent() -> None:
    """In a worker: be sent SIGTERM (and so drain) if the supervisor dies, even by SIGKILL,
    instead of serving on unsupervised. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def apply_migrations_once(config: Config) -> None:
    """Migrate before any worker starts: the workers only check the schema, so they never
    race to apply the same migration."""
    db = database_for(config)
    await db.open()
    try:
        await migrate(db, Clock().now_ms())
    finally:
        await db.close()


@dataclass
class Worker:
    number: int
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    failures: int = 0  # deaths in a row, for the backoff
    listening: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return f"w{self.number}"


@dataclass(frozen=True)
class Plan:
    """What every worker is started with."""

    data_dir: Path
    host: str
    port: int
    node: str  # the node name the workers' names derive from
    count: int
    log_level: str
    stop_timeout_s: float


class Supervisor:
    """Starts the workers, keeps them running, stops them; `run` returns the exit code."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.workers = [Worker(k) for k in range(1, plan.count + 1)]
        self._stopping = asyncio.Event()
        self._failed: str | None = None
        self._relays: set[asyncio.Task[None]] = set()  # referenced, or a running task may be collected

    def command(self, worker: Worker) -> list[str]:
        shown_node = f"{self.plan.node}-{worker.name}"
        return [sys.executable, "-m", "lucky_cli.main", "serve", "--worker",
                "--data-dir", str(self.plan.data_dir), "--host", self.plan.host, "--port", str(self.plan.port),
                "--node-id", shown_node, "--log-level", self.plan.log_level]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._stopping.set)
        try:
            tasks = [asyncio.create_task(self._keep(worker)) for worker in self.workers]
            ready = asyncio.create_task(self._all_listening())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait([ready, stopping], return_when=asyncio.FIRST_COMPLETED)
            if ready.done() and not self._stopping.is_set():
                shown = f"[{self.plan.host}]" if ":" in self.plan.host else self.plan.host
                log.info("listening on http://%s:%d (%d workers)", shown, self.plan.port, self.plan.count)
                await stopping
            ready.cancel()
            if self._failed is None:
                log.info("draining: passing the signal on to %d workers", self.plan.count)
            await self._stop_all()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*self._relays, return_exceptions=True)  # the last lines of the log
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        if self._failed is not None:
            raise ServeError(self._failed)
        log.info("stopped")
        return 0

    async def _all_listening(self) -> None:
        await asyncio.gather(*(worker.listening.wait() for worker in self.workers))

    async def _keep(self, worker: Worker) -> None:
        """Run one worker until the supervisor stops; restart it when it dies on its own."""
        while not self._stopping.is_set():
            await self._start(worker)
            assert worker.proc is not None
            code = await worker.proc.wait()
            if self._stopping.is_set():
                return
            if not worker.listening.is_set():
                # Dying before it ever listened (a port taken, a schema to migrate, a bad
                # config): restarting would fail the same way, so the whole start fails.
                self._failed = f"worker {worker.name} {exit_described(code)} before listening (see its log above)"
                self._stopping.set()
                return
            up = time.monotonic() - worker.started
            worker.failures = 1 if up >= _HEALTHY_AFTER_S else worker.failures + 1
            delay = restart_delay(worker.failures)
            log.warning("worker %s (pid %d) %s; restarting it in %.1f s", worker.name, worker.proc.pid,
                        exit_described(code), delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass

    async def _start(self, worker: Worker) -> None:
        # A restarted worker that has listened before counts as listening already, so that the
        # one `listening on` line is logged once, when all first listen.
        worker.proc = await asyncio.create_subprocess_exec(
            *self.command(worker), stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        worker.started = time.monotonic()
        log.info("worker %s started (pid %d)", worker.name, worker.proc.pid)
        relay = asyncio.create_task(self._relay(worker, worker.proc))
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)

    async def _relay(self, worker: Worker, proc: asyncio.subprocess.Process) -> None:
        """Copy the worker's log to ours, each line marked with the worker; its own `listening
        on` line is rewritten, so that the parent's is the only one (scripts wait for it)."""
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            if _LISTENING.search(line):
                worker.listening.set()
                log.info("worker %s (pid %d) is accepting connections", worker.name, proc.pid)
                continue
            sys.stderr.write(f"{worker.name}| {line}\n")
            sys.stderr.flush()

    async def _stop_all(self) -> None:
        running = [w.proc for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for proc in running:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        waits = [asyncio.create_task(proc.wait()) for proc in running]
        if not waits:
            return
        _, late = await asyncio.wait(waits, timeout=self.plan.stop_timeout_s + _STOP_MARGIN_S)
        if late:
            log.warning("%d worker(s) still draining after %.0f s: killing them", len(late),
                        self.plan.stop_timeout_s + _STOP_MARGIN_S)
            for proc in running:
                if proc.returncode is None:
                    proc.kill()
            await asyncio.gather(*late, return_exceptions=True)


def supervise(config: Config, data_dir: Path, count: int, log_level: str) -> int:
    """Run `count` workers of the instance until SIGTERM or SIGINT; the exit code."""
    reason = refusal(config)
    if reason is not None:
        raise ServeError(reason)
    # Held until the end, so that no other program takes the port between the workers' starts.
    held = bind_free_port(config.server.host, reuse_port=True) if config.server.port == 0 else None
    port = int(held.getsockname()[1]) if held is not None else config.server.port
    plan = Plan(data_dir=data_dir, host=config.server.host, port=port, node=node_name(config), count=count,
                log_level=log_level, stop_timeout_s=config.server.shutdown_timeout_s)

    async def go() -> int:
        await apply_migrations_once(config)
        supervisor = Supervisor(plan)
        try:
            return await supervisor.run()
        finally:
            if held is not None:
                held.close()

    return asyncio.run(go())
