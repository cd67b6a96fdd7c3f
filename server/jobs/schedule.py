"""A job's schedule: `every <N>s` or a five-field crontab in UTC, as an APScheduler trigger.

The same parsing serves the scheduler (the trigger it runs), `lucky jobs` (the next run when no
server has recorded one) and `lucky doctor` (how long "three intervals" is).

APScheduler 3.x numbers the days of the week from Monday (0) where crontab counts from Sunday
(0 or 7): the day-of-week field is rewritten with day names first, so `0 3 * * 1-5` means
weekdays, as an operator who knows crontab expects.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"every\s+([0-9]{1,9})\s*s")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMBERED_DAYS = re.compile(r"(\*|([0-7])(?:-([0-7]))?)(?:/([1-9]))?")


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
        return CronTrigger.from_crontab(_named_weekdays(schedule), timezone=timezone.utc)
    except ValueError as exc:
        raise BadSchedule(f"{schedule!r} is neither `every <N>s` nor a crontab such as `17 4 * * *` "
                          f"(in UTC): {exc}") from None


def _named_weekdays(schedule: str) -> str:
    """The crontab with its day-of-week numbers (crontab's: 0 and 7 are Sunday) as day names."""
    fields = schedule.split()
    if len(fields) != 5:
        return schedule  # from_crontab says what is wrong
    items = []
    for item in fields[4].split(","):
        found = _NUMBERED_DAYS.fullmatch(item)
        if found is None or item == "*":
            items.append(item)  # names, or something from_crontab will refuse
            continue
        whole, first, last, step = found.groups()
        start, stop = (0, 6) if whole == "*" else (int(first), int(last or first))
        if stop < start:
            raise BadSchedule(f"{schedule!r}: the day-of-week range {item!r} runs backwards")
        days = range(start, stop + 1, int(step or 1))
        items.extend(dict.fromkeys(_DAY_NAMES[day % 7] for day in days))
    fields[4] = ",".join(items)
    return " ".join(fields)


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
