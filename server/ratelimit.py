"""Token buckets in integer arithmetic, keyed by whatever is limited (an IP, a phone).

In-process: a scaled-out site limits per node. Buckets that have refilled are dropped by
`prune`, which `hit` runs itself once per refill period, so the dict holds only the keys seen
within about one period (not every IP ever seen) at a cost of one pass per period.
"""

from __future__ import annotations

import math

from .clock import Clock

_SCALE = 1_000_000  # tokens are counted in millionths so refill stays integer


class RateLimiter:
    def __init__(self, clock: Clock, rate: int, per_s: float, burst: int | None = None) -> None:
        """Allow `rate` events every `per_s` seconds, with bursts of `burst` (default `rate`)."""
        self._clock = clock
        self._capacity = (burst if burst is not None else rate) * _SCALE
        self._refill_per_s = rate * _SCALE / per_s if per_s > 0 else 0.0
        self._buckets: dict[str, tuple[int, float]] = {}
        self.enabled = rate > 0
        # An empty bucket is full again after this long: then it can go, as an unseen key.
        self._refill_s = self._capacity / self._refill_per_s if self._refill_per_s else 60.0
        self._next_prune = clock.monotonic() + self._refill_s

    def hit(self, key: str) -> int:
        """Take one token for `key`: 0 if allowed, else the seconds to wait before retrying."""
        if not self.enabled:
            return 0
        now = self._clock.monotonic()
        if now >= self._next_prune:
            self.prune()
        level, last = self._buckets.get(key, (self._capacity, now))
        level = min(self._capacity, level + int((now - last) * self._refill_per_s))
        if level >= _SCALE:
            self._buckets[key] = (level - _SCALE, now)
            return 0
        self._buckets[key] = (level, now)
        missing = _SCALE - level
        return max(1, math.ceil(missing / self._refill_per_s)) if self._refill_per_s else 60

    def tracked(self) -> int:
        """How many keys are tracked (buckets not yet refilled)."""
        return len(self._buckets)

    def prune(self) -> None:
        """Drop the buckets that have refilled: the same as never having seen their keys."""
        now = self._clock.monotonic()
        self._next_prune = now + self._refill_s
        full = [k for k, (level, last) in self._buckets.items()
                if level + (now - last) * self._refill_per_s >= self._capacity]
        for key in full:
            del self._buckets[key]


class TokenBucket:
    """One bucket, for one connection's send rate: two integers and a float, no dict."""

    __slots__ = ("_level", "_last", "_capacity", "_refill_per_s")

    def __init__(self, rate_per_s: int, burst: int, now: float) -> None:
        self._capacity = max(burst, 1) * _SCALE
        self._refill_per_s = rate_per_s * _SCALE
        self._level = self._capacity
        self._last = now

    def take(self, now: float) -> bool:
        """Take one token; False (and nothing taken) when the bucket is empty."""
        if self._refill_per_s <= 0:
            return True  # a rate of 0 means unlimited
        self._level = min(self._capacity, self._level + int((now - self._last) * self._refill_per_s))
        self._last = now
        if self._level >= _SCALE:
            self._level -= _SCALE
            return True
        return False
