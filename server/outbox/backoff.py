"""How long a failed attempt waits before the next one: exponential, capped, with jitter."""

from __future__ import annotations

import random

from ..storage.stores.outbox import Claimed, Outcome

BASE_MS = 5_000
CAP_MS = 600_000


def retry_delay_ms(attempts: int, rng: random.Random, base_ms: int = BASE_MS, cap_ms: int = CAP_MS) -> int:
    """The wait after the `attempts`-th failed attempt (1 = the first): base * 2^(attempts-1),
    at most `cap_ms`, of which half is fixed and half random ("equal jitter"), so that rows
    that failed together (a receiver that was down) do not all come back at the same moment,
    and none comes back sooner than half its step."""
    ceiling = min(cap_ms, base_ms << min(max(attempts, 1) - 1, 30))
    half = ceiling // 2
    return half + int(rng.random() * (ceiling - half))


def attempt_outcome(row: Claimed, error: str | None, now_ms: int, max_attempts: int, rng: random.Random) -> Outcome:
    """What a claimed row's attempt comes to: done when it went through (no error); else due
    again after the backoff, or failed once it has had `max_attempts` attempts."""
    if error is None:
        return Outcome(row.key, done=True)
    return Outcome(row.key, done=False, next_at=now_ms + retry_delay_ms(row.attempts, rng),
                   failed=row.attempts >= max_attempts, error=error)
