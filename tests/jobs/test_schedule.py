"""Schedules: `every <N>s` or a crontab in UTC; the next run and the interval doctor uses."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lucky_server.jobs.schedule import BadSchedule, every_s, interval_ms, next_run_ms, trigger


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("17 4 * * *", "2026-12-04 18:30:00", "2026-12-05 04:17:00"),
    ("17 4 * * *", "2026-12-05 04:17:00", "2026-12-06 04:17:00"),  # strictly after
    ("*/15 * * * *", "2026-12-04 18:31:10", "2026-12-04 18:45:00"),
    ("0 3 * * sun", "2026-12-04 18:30:00", "2026-12-06 03:00:00"),  # named days mean what crontab means
    # Numbered days too (2026-12-04 is a Friday): 0 and 7 are Sunday, 1-5 Monday to Friday.
    ("0 3 * * 0", "2026-12-04 18:30:00", "2026-12-06 03:00:00"),
    ("0 3 * * 7", "2026-12-04 18:30:00", "2026-12-06 03:00:00"),
    ("0 3 * * 1-5", "2026-12-04 18:30:00", "2026-12-07 03:00:00"),
    ("0 3 * * 6", "2026-12-04 18:30:00", "2026-12-05 03:00:00"),
    ("0 3 * * 1,3", "2026-12-04 18:30:00", "2026-12-07 03:00:00"),
    ("0 3 * * */2", "2026-12-04 18:30:00", "2026-12-05 03:00:00"),  # sun, tue, thu, sat
    ("every 30s", "2026-12-04 18:30:00", "2026-12-04 18:30:30"),
])
def test_the_next_run(schedule: str, after: str, expected: str) -> None:
    assert next_run_ms(schedule, _ms(after)) == _ms(expected)


def test_intervals() -> None:
    now = _ms("2026-12-04 18:30:00")
    assert interval_ms("every 5s", now) == 5000 and every_s(" every 5 s ") == 5
    assert interval_ms("17 4 * * *", now) == 86_400_000
    assert interval_ms("*/10 * * * *", now) == 600_000
    assert every_s("17 4 * * *") is None


@pytest.mark.parametrize("schedule", ["every 0s", "every day", "every 5m", "61 * * * *", "* * * *", "", "@daily",
                                      "0 3 * * 5-1", "0 3 * * 8"])
def test_what_is_not_a_schedule(schedule: str) -> None:
    with pytest.raises(BadSchedule):
        trigger(schedule)
