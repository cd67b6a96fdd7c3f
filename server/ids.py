"""Snowflake ids: 64-bit, time-ordered, unique per worker without coordination.

Layout: 41 bits of milliseconds since LUCKY_EPOCH_MS, 10 bits of worker id, 12 bits of sequence.
A node gets worker id 0 on the embedded deployment and a leased one when scaled out.
"""

from __future__ import annotations

from .clock import Clock

LUCKY_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_WORKER_BITS = 10
_SEQ_BITS = 12
MAX_WORKER = (1 << _WORKER_BITS) - 1
_SEQ_MASK = (1 << _SEQ_BITS) - 1


class Snowflake:
    """Generates ids that only go up within one process."""

    def __init__(self, worker_id: int = 0, clock: Clock | None = None) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id must be 0..{MAX_WORKER}, got {worker_id}")
        self._worker = worker_id
        self._clock = clock or Clock()
        self._last_ms = -1
        self._seq = 0

    def use_worker(self, worker_id: int) -> None:
        """Make ids as another worker from now on (a lost lease, server/bus/workers.py)."""
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id must be 0..{MAX_WORKER}, got {worker_id}")
        self._worker = worker_id

    @property
    def worker_id(self) -> int:
        return self._worker

    def next_id(self) -> int:
        now = self._clock.now_ms() - LUCKY_EPOCH_MS
        if now <= self._last_ms:
            # Same millisecond, or the wall clock stepped back: keep counting on the last
            # millisecond so ids never repeat or go down; borrow the next one when full.
            now = self._last_ms
            self._seq = (self._seq + 1) & _SEQ_MASK
            if self._seq == 0:
                now += 1
        else:
            self._seq = 0
        self._last_ms = now
        return (now << (_WORKER_BITS + _SEQ_BITS)) | (self._worker << _SEQ_BITS) | self._seq


def parse_id(value: object) -> int | None:
    """An id from the wire (a decimal string, or an int from a lax client); None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 1 << 63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        parsed = int(value)
        return parsed if 0 < parsed < 1 << 63 else None
    return None

# The largest id a database column holds (a signed 64-bit integer): "before the newest" pages.
MAX_ID = (1 << 63) - 1
