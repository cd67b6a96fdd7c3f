"""The backoff between attempts: doubling from 5 s, capped at 10 min, half of each step random."""

from __future__ import annotations

import random

from lucky_server.outbox.backoff import BASE_MS, CAP_MS, attempt_outcome, retry_delay_ms
from lucky_server.storage.stores.outbox import Claimed


def test_each_step_doubles_up_to_the_cap_with_half_of_it_random() -> None:
    rng = random.Random(4)
    for attempts in range(1, 40):
        step = min(CAP_MS, BASE_MS * 2 ** (attempts - 1))
        delays = {retry_delay_ms(attempts, rng) for _ in range(200)}
        assert min(delays) >= step // 2 and max(delays) <= step
        assert len(delays) > 100, "jittered, not one fixed delay"


def test_an_attempt_is_done_retried_or_failed_at_max_attempts() -> None:
    rng = random.Random(1)
    assert attempt_outcome(Claimed(7, 3), None, 1000, 3, rng).done
    again = attempt_outcome(Claimed(7, 2), "HTTP 500", 1000, 3, rng)
    assert (again.done, again.failed, again.error) == (False, False, "HTTP 500")
    assert 1000 + BASE_MS <= again.next_at <= 1000 + 2 * BASE_MS
    last = attempt_outcome(Claimed(7, 3), "HTTP 500", 1000, 3, rng)
    assert (last.done, last.failed) == (False, True)
