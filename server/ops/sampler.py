"""Numbers of this node sampled once a minute and kept in memory, for the console's charts.

Per node and per process: history restarts with the process (the dashboard says so). A day of
minutes is 1,440 small tuples, so nothing is written anywhere. The disk use of the data dir is
measured in a thread, since walking a large file store is slow.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..clock import Clock

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
DAY_MINUTES = 1440


@dataclass(frozen=True)
class Reading:
    """What the node shows at one instant: connections, online users, messages stored so far."""

    connections: int
    online_users: int
    messages_stored: int


@dataclass(frozen=True)
class Sample:
    at_ms: int
    connections: int
    online_users: int
    messages_per_min: int  # stored by this node since the previous sample, per minute


@dataclass(frozen=True)
class DiskUse:
    data_dir_bytes: int  # everything under the data dir (the database, local files, backups)
    free_bytes: int  # free on the data dir's filesystem
    total_bytes: int


def measure_disk(data_dir: Path) -> DiskUse:
    """Walk the data dir (blocking: run it in a thread)."""
    used = 0
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            try:
                used += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while walking
    try:
        stat = os.statvfs(data_dir)
        return DiskUse(used, stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize)
    except OSError:
        return DiskUse(used, 0, 0)


class Sampler:
    def __init__(self, clock: Clock, read: Callable[[], Reading], data_dir: Path) -> None:
        self._clock = clock
        self._read = read
        self._data_dir = data_dir
        self.samples: deque[Sample] = deque(maxlen=DAY_MINUTES)
        self.started_at = clock.now_ms()
        self.disk: DiskUse | None = None
        self._last: tuple[int, int] | None = None  # (at_ms, messages_stored) of the previous sample

    def sample(self) -> Sample:
        """Take one sample now (the loop calls this every minute)."""
        now = self._clock.now_ms()
        reading = self._read()
        rate = 0
        if self._last is not None and now > self._last[0]:
            rate = round((reading.messages_stored - self._last[1]) * MINUTE_MS / (now - self._last[0]))
        self._last = (now, reading.messages_stored)
        sample = Sample(now, reading.connections, reading.online_users, max(0, rate))
        self.samples.append(sample)
        return sample

    def last(self, minutes: int) -> list[Sample]:
        """The samples of the last `minutes` minutes, oldest first."""
        since = self._clock.now_ms() - minutes * MINUTE_MS
        return [s for s in self.samples if s.at_ms > since]

    async def measure_disk(self) -> DiskUse:
        self.disk = await asyncio.to_thread(measure_disk, self._data_dir)
        return self.disk

    async def run_forever(self, every_s: float = 60.0) -> None:
        """Sample every `every_s` seconds (the first now), and measure the disk every tenth time."""
        count = 0
        while True:
            try:
                self.sample()
                if count % 10 == 0:
                    await self.measure_disk()
            except Exception:  # a failed sample must not end the sampling
                log.exception("dashboard sample failed")
            count += 1
            await asyncio.sleep(every_s)
