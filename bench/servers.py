"""Starting the servers under benchmark as subprocesses: Lucky (SQLite or PostgreSQL), the relay,
and a private `redis-server` for the scale-out benchmark.

Each is started with `--port 0` and found through its `listening on http://H:P` line; its
stderr is drained by a thread so that it never blocks on a full pipe. The open-file limit of
each is raised to the hard limit so that W3 can hold thousands of sockets.
"""

from __future__ import annotations

import os
import queue
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).parent / "lucky"
LUCKY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "lucky_cli.main"]
LISTENING = re.compile(r"listening on (http://\S+)")
ADMIN_PASSWORD = "bench-admin-password"
POSTGRES_URL = os.environ.get("LUCKY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

# The server under benchmark must not throttle the generator: every client comes from 127.0.0.1.
BENCH_ENV = {
    "LUCKY_CHAT__SEND_RATE_PER_S": "1000000",
    "LUCKY_CHAT__SEND_BURST": "1000000",
    "LUCKY_AUTH__IP_RATE_PER_MIN": "0",
    "LUCKY_CHAT__FRAME_RATE_PER_S": "0",  # W1 acks every message it receives
    "LUCKY_CHAT__MAX_SOCKETS_PER_IP": "0",  # W3 holds 10,000 sockets
}


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCKY_")}
    env.update(extra)
    return env


class Process:
    """A server subprocess that logs `listening on URL` on stderr when ready."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                                     preexec_fn=_raise_nofile)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self.url = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_listening(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s: {''.join(self.log)[-2000:]}")
            if line is None:
                raise RuntimeError(f"{self.name} exited ({self.proc.wait()}): {''.join(self.log)[-2000:]}")
            found = LISTENING.search(line)
            if found:
                self.url = found.group(1)
                return self.url

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        code = self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def errors(self) -> list[str]:
        """Logged ERROR lines and tracebacks, to show after a run."""
        return [line.rstrip() for line in self.log if " ERROR " in line or line.startswith("Traceback")]


def start_relay() -> Process:
    proc = Process("relay", [sys.executable, str(REPO / "bench" / "relay.py"), "--port", "0"], clean_env())
    proc.wait_listening()
    return proc


class LuckyInstance:
    """A fresh data dir (and, on PostgreSQL, a fresh schema) initialized with `lucky init`."""

    def __init__(self, root: Path, backend: str, postgres_url: str = POSTGRES_URL) -> None:
        self.backend = backend
        self.postgres_url = postgres_url
        self.data_dir = root / f"lucky-{backend}-{uuid.uuid4().hex[:6]}"
        self.schema: str | None = None
        args = ["init", "--data-dir", str(self.data_dir), "--non-interactive", "--admin-password", ADMIN_PASSWORD]
        if backend == "postgres":
            self.schema = f"lucky_bench_{uuid.uuid4().hex[:10]}"
            sep = "&" if "?" in postgres_url else "?"
            args += ["--database", f"{postgres_url}{sep}schema={self.schema}"]
        elif backend != "sqlite":
            raise ValueError(f"unknown backend {backend!r}: sqlite or postgres")
        done = subprocess.run([*LUCKY, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=clean_env(), timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"lucky init failed: {done.stdout}{done.stderr}")

    def serve(self, *args: str, port: int = 0, **extra_env: str) -> Process:
        """`lucky serve` on this data dir; several may serve one PostgreSQL data dir (the nodes of
        a site), each with its own `--node-id` in `args`."""
        env = clean_env(**BENCH_ENV, **extra_env)
        proc = Process(f"lucky ({self.backend})",
                       [*LUCKY, "serve", "--data-dir", str(self.data_dir), "--port", str(port), *args],
                       env)
        try:
            proc.wait_listening()
        except RuntimeError:
            proc.stop()
            raise
        return proc

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.schema is not None:
            import psycopg

            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A `redis-server` of the benchmark's own on a free loopback port, without persistence, so
    that its `INFO commandstats` counts only what the nodes under benchmark sent."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--logfile", ""],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
