"""Workload W3: authenticated sockets that stay idle, and the server memory they hold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from .clients import Endpoint, close_all, connect_all, raise_open_files
from .process import rss_kb


@dataclass
class IdleResult:
    sockets: int
    rss_before_mb: float
    rss_after_mb: float
    kb_per_socket: float
    connect_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_idle(session: aiohttp.ClientSession, endpoints: Sequence[Endpoint], server_pid: int,
                   *, settle_s: float = 2.0, concurrency: int = 64,
                   progress: Callable[[int], None] | None = None) -> IdleResult:
    """Open one authenticated socket per endpoint, let them sit idle, measure the server's RSS."""
    raise_open_files(len(endpoints) + 1024)
    await asyncio.sleep(settle_s)
    before = rss_kb(server_pid) or 0
    started = time.perf_counter()
    sockets = await connect_all(session, endpoints, concurrency, progress)
    took = time.perf_counter() - started
    try:
        await asyncio.sleep(settle_s)
        after = rss_kb(server_pid) or 0
    finally:
        await close_all(sockets)
    return IdleResult(len(sockets), before / 1024, after / 1024,
                      (after - before) / max(len(sockets), 1), took)
