"""What W1 and W2 share: the figures they report, the windowed sender, the receivers' frame
loop, and how a run is ended and measured."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import orjson

from .clients import Socket, close_all
from .process import ProcessWatch, ServerPids, pid_list


@dataclass(kw_only=True)
class Figures:
    """The measurements common to every messaging workload."""

    errors: dict[str, int] = field(default_factory=dict)  # error codes the server answered, counted
    seconds: float = 0.0  # from the first send to the last delivery
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_peak_rss_mb: float | None = None
    server_cpu_pct: float | None = None
    client_cpu_pct: float = 0.0
    # CPU that neither the server nor this generator used, in % of one core: other processes
    # on the machine. A high figure means the run was disturbed and its numbers are low.
    others_cpu_pct: float | None = None
    timed_out: bool = False
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # ascending; not in to_dict

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        return data


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


async def send_windowed(ws: aiohttp.ClientWebSocketResponse, count: int, window: int,
                         frame_of: Callable[[int], str], sent: Callable[[dict[str, Any]], None],
                         error: Callable[[str], None]) -> None:
    """Send `frame_of(0..count-1)` with at most `window` unanswered; a send is answered by its
    `sent` (or an `error`), which this socket's reader passes to `sent` (or `error`)."""
    slots = asyncio.Semaphore(window)
    finished = asyncio.Event()
    answered = 0

    async def replies() -> None:
        nonlocal answered
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = orjson.loads(msg.data)
                kind = frame.get("type")
                if kind == "sent":
                    sent(frame)
                elif kind == "error":
                    error(str(frame.get("code")))
                else:
                    continue
                answered += 1
                slots.release()
                if answered >= count:
                    return
            error(f"closed by the server ({ws.close_code})")
        finally:
            finished.set()
            for _ in range(window):  # unblock the loop below if the socket closed early
                slots.release()

    reader = asyncio.create_task(replies())
    try:
        for i in range(count):
            await slots.acquire()
            if finished.is_set():
                break
            await ws.send_str(frame_of(i))
        await finished.wait()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def until_delivered(all_done: asyncio.Event, sending: Sequence[asyncio.Task[None]], started: float,
                           timeout: float) -> bool:
    """Wait until every message is delivered; or, once every send is answered (some with an
    error), until the stragglers have had a few seconds: no run waits out the timeout because
    a rate limit dropped sends. True when the timeout ran out first."""
    delivered = asyncio.create_task(all_done.wait())
    await asyncio.wait([delivered, *sending], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    deadline = started + timeout
    while not all_done.is_set() and time.perf_counter() < deadline:
        pending = [t for t in sending if not t.done()]
        if not pending:
            await asyncio.wait([delivered], timeout=min(5.0, max(0.0, deadline - time.perf_counter())))
            break
        await asyncio.wait([delivered, *pending], timeout=deadline - time.perf_counter(),
                           return_when=asyncio.FIRST_COMPLETED)
    delivered.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await delivered
    return not all_done.is_set() and time.perf_counter() >= deadline


async def messages(ws: aiohttp.ClientWebSocketResponse,
                   figures: Figures) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """A receiver's `message` frames with the time each arrived; `error` frames are counted."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        now = time.perf_counter()
        frame = orjson.loads(msg.data)
        kind = frame.get("type")
        if kind == "message":
            yield now, frame["message"]
        elif kind == "error":
            figures.error(str(frame.get("code")))


async def finish(figures: Figures, tasks: Iterable[asyncio.Task[None]], sockets: Iterable[Socket],
                 started: float, last_delivery: float | None, latencies: list[float], watch: ProcessWatch,
                 server_pid: ServerPids) -> None:
    """Stop the run's tasks, close its sockets, and fill in its time, latency, CPU and memory figures."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_all(sockets)
    end = last_delivery if last_delivery is not None else time.perf_counter()
    figures.seconds = max(end - started, 1e-9)
    latencies.sort()
    figures.latencies_ms = [x * 1000 for x in latencies]
    figures.p50_ms, figures.p95_ms, figures.p99_ms = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
    figures.max_ms = latencies[-1] * 1000 if latencies else 0.0
    wall = max(watch.wall_s, 1e-9)
    figures.client_cpu_pct = 100 * watch.client_s / wall
    if watch.machine_s is not None:
        figures.others_cpu_pct = max(0.0, 100 * (watch.machine_s - watch.client_s - (watch.cpu_s or 0)) / wall)
    if pid_list(server_pid):
        figures.server_peak_rss_mb = watch.peak_kb / 1024
        if watch.cpu_s is not None and watch.wall_s:
            figures.server_cpu_pct = 100 * watch.cpu_s / watch.wall_s
