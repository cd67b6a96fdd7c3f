"""The short links page: everyone's links newest first (paged by id), a link created (owned by
the signed-in admin), its visits per day as a bar chart, and deletion.

Visits are counted in memory and written every `links.flush_s`; a link's stats page writes
this node's counted visits first, so it shows them up to now (other nodes' within their flush).
"""

from __future__ import annotations

import datetime

from aiohttp import web

from lucky_server.errors import LuckyError, validation_failed

from markupsafe import Markup

from ..charts import HEIGHT, PAD_BOTTOM, PAD_LEFT, PAD_TOP, WIDTH
from ..web import PREFIX, Pages, Visit

pages = Pages()

PAGE = 50
STATS_DAYS = (7, 30, 90, 365)


def _expiry(text: str) -> int | None:
    """A form's `expires` (the browser's datetime-local, taken as UTC) in epoch ms; '' is none."""
    text = text.strip()
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise validation_failed("expires_at", "a date and time, YYYY-MM-DDTHH:MM (UTC)") from None
    return int(when.replace(tzinfo=datetime.UTC).timestamp() * 1000)


async def _username(visit: Visit, user_id: int) -> str:
    try:
        return str((await visit.core.users.get(user_id)).username)
    except LuckyError:  # an owner whose account is gone
        return f"user {user_id}"


def bar_chart(days: list[tuple[str, int]], *, label: str) -> Markup:
    """Visits per day (("YYYY-MM-DD", visits), oldest first) as an SVG bar chart, one bar a day;
    every text in it is escaped."""
    top = max([1, *(n for _, n in days)])
    plot_w = WIDTH - PAD_LEFT - 4
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(1, len(days))
    base = PAD_TOP + plot_h
    parts = [f'<svg class="chart bars" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{Markup.escape(label)}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<line class="axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - 4}" y2="{base}"/>',
             f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{base}"/>',
             f'<text class="tick" x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end">{top}</text>',
             f'<text class="tick" x="{PAD_LEFT - 4}" y="{base}" text-anchor="end">0</text>']
    for i, (text, visits) in enumerate(days):
        day = Markup.escape(text)
        height = visits * plot_h / top
        x = PAD_LEFT + i * step + step * 0.15
        # fill is a presentation attribute, which the console's CSP (no inline style) allows
        parts.append(f'<rect class="bar" data-day="{day}" data-visits="{visits}" x="{x:.1f}" y="{base - height:.1f}" '
                     f'width="{step * 0.7:.1f}" height="{height:.1f}" fill="#2f6fdf"><title>{day}: {visits}</title></rect>')
    for i in sorted({0, len(days) // 2, len(days) - 1}) if days else []:
        parts.append(f'<text class="tick" x="{PAD_LEFT + (i + 0.5) * step:.1f}" y="{HEIGHT - 4}" '
                     f'text-anchor="middle">{Markup.escape(days[i][0][5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@pages.get(f"{PREFIX}/links", "Short links: list and create")
async def links(visit: Visit) -> web.StreamResponse:
    service = visit.core.links
    cursor = visit.query("cursor") or None
    rows, next_cursor = await service.list_all(cursor, PAGE)
    owners = {owner_id: await _username(visit, owner_id) for owner_id in {r.owner_id for r in rows}}
    return visit.render(
        "links.html", title="Short links", links=rows, owners=owners, short_url=service.short_url,
        now=visit.core.clock.now_ms(),
        next_url=visit.url(f"{PREFIX}/links", cursor=next_cursor) if next_cursor else "",
        first_url=f"{PREFIX}/links" if cursor else "")


@pages.post(f"{PREFIX}/links", "Create a short link")
async def create(visit: Visit) -> web.StreamResponse:
    admin_id = visit.admin.id
    code = visit.field("code").strip() or None
    link, created = await visit.core.links.create(admin_id, visit.field("url").strip(), code=code,
                                                  expires_at=_expiry(visit.field("expires")), actor_id=admin_id,
                                                  operator=True)  # the service writes link.create to the audit log
    short = visit.core.links.short_url(link.code)
    await visit.redirect(f"{PREFIX}/links/{link.code}",
                         flash=f"Created {short}." if created else f"You already have {short} for that URL.")


@pages.get(f"{PREFIX}/links/{{code}}", "One short link: visits per day")
async def link_stats(visit: Visit) -> web.StreamResponse:
    service = visit.core.links
    code = visit.request.match_info["code"]
    days_text = visit.query("days", "30")
    if not days_text.isdigit() or int(days_text) not in STATS_DAYS:
        raise validation_failed("days", ", ".join(map(str, STATS_DAYS)))
    await service.visits.flush()  # this node's visits so far, before the link's total is read
    link = await service.get(code, visit.admin.id)
    stats = await service.stats(code, visit.admin.id, int(days_text))
    owner = await _username(visit, link.owner_id)
    return visit.render(
        "link.html", title=f"Short link {link.code}", link=link, stats=stats, owner=owner,
        short_url=service.short_url(link.code), days=int(days_text), choices=STATS_DAYS,
        total_days=sum(n for _, n in stats.days), now=visit.core.clock.now_ms(),
        chart=bar_chart(stats.days, label=f"Visits of {link.code} per day, last {days_text} days"))


@pages.post(f"{PREFIX}/links/{{code}}/delete", "Delete a short link")
async def delete(visit: Visit) -> web.StreamResponse:
    admin_id = visit.admin.id
    # operator: the service writes link.delete to the audit log, whoever owns the link
    link = await visit.core.links.delete(visit.request.match_info["code"], admin_id, operator=True)
    await visit.redirect(f"{PREFIX}/links", flash=f"Deleted {link.code}: /s/{link.code} answers 404 from now on.")
