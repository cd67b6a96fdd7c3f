"""The dashboard: this node's live numbers, the outbox, the jobs, disk use, and charts of the
last hour and day from the in-memory sampler (`lucky_server.ops.sampler`)."""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from lucky_server import __version__
from lucky_server.jobs.runner import node_name
from lucky_server.jobs.service import JobService
from lucky_server.keys import SAMPLER
from lucky_server.ops.sampler import MINUTE_MS, Sample

from ..charts import line_chart
from ..web import PREFIX, Pages, Visit

pages = Pages()

HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def _live(visit: Visit) -> dict[str, Any]:
    core = visit.core
    sampler = visit.request.app[SAMPLER]
    last = sampler.samples[-1] if sampler.samples else None
    return {
        "connections": core.chat.sessions.count(),
        "online_users": core.chat.sessions.online_users(),
        "messages_per_min": last.messages_per_min if last else 0,
        "messages_stored": core.chat.writer.messages_stored,
        "send_queue": core.chat.writer.depth,
        "nodes": core.bus.nodes_online(),  # the whole site's, from the bus (1 on the embedded default)
    }


def _ticks(start: int, end: int, step_ms: int, fmt: str) -> list[tuple[int, str]]:
    first = start - start % step_ms + step_ms
    return [(at, datetime.datetime.fromtimestamp(at / 1000, datetime.UTC).strftime(fmt))
            for at in range(first, end, step_ms)]


def _buckets(samples: list[Sample], start: int, bucket_ms: int) -> list[list[Sample]]:
    grouped: dict[int, list[Sample]] = {}
    for s in samples:
        grouped.setdefault((s.at_ms - start) // bucket_ms, []).append(s)
    return [grouped[k] for k in sorted(grouped)]


def _charts(visit: Visit) -> list[tuple[str, Any, Any]]:
    """(title, last hour's chart, last day's chart) per measure; the day in 15-minute means."""
    sampler = visit.request.app[SAMPLER]
    now = visit.core.clock.now_ms()
    hour = sampler.last(60)
    day_start = now - DAY_MS
    day = _buckets(sampler.last(1440), day_start, 15 * MINUTE_MS)
    hour_ticks = _ticks(now - HOUR_MS, now, 15 * MINUTE_MS, "%H:%M")
    day_ticks = _ticks(day_start, now, 4 * HOUR_MS, "%H:%M")
    charts = []
    for title, attr in (("Messages per minute", "messages_per_min"), ("Connections", "connections"),
                        ("Online users", "online_users")):
        hour_points = [(s.at_ms, float(getattr(s, attr))) for s in hour]
        day_points = [(b[-1].at_ms, sum(getattr(s, attr) for s in b) / len(b)) for b in day]
        charts.append((title,
                       line_chart(hour_points, start_ms=now - HOUR_MS, end_ms=now, ticks=hour_ticks,
                                  label=f"{title}, last hour"),
                       line_chart(day_points, start_ms=day_start, end_ms=now, ticks=day_ticks,
                                  label=f"{title}, last day")))
    return charts


@pages.get(PREFIX, "The dashboard")
async def dashboard(visit: Visit) -> web.StreamResponse:
    core = visit.core
    sampler = visit.request.app[SAMPLER]
    return visit.render(
        "dashboard.html", title="Dashboard", live=_live(visit), outbox=await core.outbox.status(),
        jobs=await JobService.of(core).statuses(), disk=sampler.disk, version=__version__,
        node=node_name(core.config.server.node_id), database=core.db.description,
        storage=core.config.storage_url.split("://", 1)[0], started_at=sampler.started_at, charts=_charts(visit))


@pages.get(f"{PREFIX}/live.json", "The dashboard's live numbers, for its script")
async def live(visit: Visit) -> web.StreamResponse:
    return web.json_response(_live(visit))
