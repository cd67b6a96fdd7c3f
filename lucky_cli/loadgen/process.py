"""The server's process seen from outside: CPU time and memory, read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

# The server under load: one process, several (the nodes of a cluster, `--workers` processes), or unknown.
ServerPids = int | Sequence[int] | None


def pid_list(pids: ServerPids) -> list[int]:
    if pids is None:
        return []
    return [pids] if isinstance(pids, int) else list(pids)


def with_children(pid: int) -> list[int]:
    """`pid` and every process below it (a `lucky serve --workers N` parent and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError, ValueError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found

def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_kb(pid: int) -> int | None:
    return _status_kb(pid, "VmRSS")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU seconds spent on every core, by every process, since boot (from /proc/stat)."""
    try:
        cols = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(c) for c in cols[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def find_listening_pid(port: int) -> int | None:
    """The pid of the local process listening on TCP `port`, if this user can see it."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry.name)
    return None


class ProcessWatch:
    """Samples the server's RSS while a workload runs, and its CPU time across it.

    With several processes (the nodes of a cluster) the CPU times are summed (so it may pass
    100% of one core) and the RSS is the peak of their sum.
    """

    def __init__(self, pid: ServerPids, every_s: float = 0.05) -> None:
        self.pids = pid_list(pid)
        self._every = every_s
        self._task: asyncio.Task[None] | None = None
        self.peak_kb = 0
        self._cpu0: float | None = None
        self._wall0 = 0.0
        self.cpu_s: float | None = None
        self.wall_s = 0.0
        self._machine0 = machine_busy_seconds()
        self._client0 = time.process_time()
        self.machine_s: float | None = None
        self.client_s = 0.0

    async def __aenter__(self) -> ProcessWatch:
        self._machine0, self._client0 = machine_busy_seconds(), time.process_time()
        self._wall0 = time.perf_counter()
        if self.pids:
            self._cpu0 = self._cpu()
            self._sample()
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall0
        self.client_s = time.process_time() - self._client0
        machine1 = machine_busy_seconds()
        if machine1 is not None and self._machine0 is not None:
            self.machine_s = machine1 - self._machine0
        if self._task is None or not self.pids:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sample()
        cpu1 = self._cpu()
        if cpu1 is not None and self._cpu0 is not None:
            self.cpu_s = cpu1 - self._cpu0

    def _cpu(self) -> float | None:
        times = [cpu_seconds(p) for p in self.pids]
        return None if any(t is None for t in times) else sum(t or 0.0 for t in times)

    def _sample(self) -> None:
        if self.pids:
            self.peak_kb = max(self.peak_kb, sum(rss_kb(p) or 0 for p in self.pids))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self._sample()
