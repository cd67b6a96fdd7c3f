"""A job's schedule: `every <N>s` or a five-field crontab in UTC, as an APScheduler trigger.

The same parsing serves the scheduler (the trigger it runs), `lucky jobs` (the next run when no
server has recorded one) and `lucky doctor` (how long "three intervals" is).

APScheduler 3.x numbers the days of the week from Monday (0) where crontab counts from Sunday;
names (`mon`, `sun`) mean the same in both and are what docs/operations.md recommends.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"every\s+([0-9]{1,9})\s*s")


class BadSchedule(ValueError):
    """A schedule that is neither `every <N>s` nor a five-field crontab."""


def every_s(schedule: str) -> int | None:
    """The interval of an `every <N>s` schedule, or None for a crontab."""
    found = _EVERY.fullmatch(schedule.strip())
    return int(found.group(1)) if found else None


def trigger(schedule: str) -> BaseTrigger:
    """The APScheduler trigger of a schedule; BadSchedule says what is wrong with it."""
    seconds = every_s(schedule)
    if seconds is not None:
        if seconds < 1:
            raise BadSchedule(f"{schedule!r}: the interval must be at least 1 s")
        return IntervalTrigger(seconds=seconds, timezone=timezone.utc)
    try:
        return CronTrigger.from_crontab(schedule, timezone=timezone.utc)
    except ValueError as exc:
        raise BadSchedule(f"{schedule!r} is neither `every <N>s` nor a crontab such as `17 4 * * *` "
                          f"(in UTC): {exc}") from None


def _aware(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def next_run_ms(schedule: str, after_ms: int) -> int | None:
    """When the schedule next fires after `after_ms` (an interval counts from `after_ms`)."""
    seconds = every_s(schedule)
    if seconds is not None:
        return after_ms + seconds * 1000
    # Strictly after: a crontab fires at whole seconds, and "now" matching one is not next.
    fire = trigger(schedule).get_next_fire_time(None, _aware(after_ms + 1))
    return None if fire is None else int(fire.timestamp() * 1000)


def interval_ms(schedule: str, around_ms: int) -> int:
    """The time between two runs: the interval, or for a crontab the gap between its next two
    fire times after `around_ms` (a daily crontab: a day)."""
    seconds = every_s(schedule)
    if seconds is not None:
        return seconds * 1000
    first = next_run_ms(schedule, around_ms)
    second = next_run_ms(schedule, first) if first is not None else None
    if first is None or second is None:
        return 0
    return second - first
