"""The audit log: every change made through the console, the CLI and the admin API, newest
first, keyset-paged by id, filtered by actor (a username) and/or action."""

from __future__ import annotations

from aiohttp import web

from ..web import PREFIX, Pages, Visit

pages = Pages()
PAGE_SIZE = 50


@pages.get(f"{PREFIX}/audit", "The audit log")
async def audit_log(visit: Visit) -> web.StreamResponse:
    actor = visit.query("actor").strip()[:64]
    action = visit.query("action").strip()[:64]
    before_raw = visit.query("before")
    before = int(before_raw) if before_raw.isdigit() and len(before_raw) <= 20 else None
    page = await visit.core.audit.page(before_id=before, limit=PAGE_SIZE, actor=actor or None, action=action or None)
    path = f"{PREFIX}/audit"
    return visit.render("audit.html", title="Audit log", entries=page.entries, actor=actor, action=action,
                        next_url=visit.url(path, actor=actor, action=action, before=page.next_before)
                        if page.next_before else "",
                        first_url=visit.url(path, actor=actor, action=action) if before else "")
