"""Mounting the console on the server's application: its templates and every page table."""

from __future__ import annotations

from aiohttp import web

from lucky_server.errors import not_found

from . import signin
from .pages import audit, groups, users
from .pages import backups, dashboard, jobs, links, outbox, releases
from .pages.background import setup_background
from .web import PREFIX, Pages, Visit, setup_templates

# Every console page module's table, in matching order. A new page module adds its `pages`.
PAGE_TABLES: tuple[Pages, ...] = (signin.pages, dashboard.pages, users.pages, groups.pages, audit.pages,
                                  releases.pages, links.pages, outbox.pages, jobs.pages, backups.pages)

_fallback = Pages()


@_fallback.get(PREFIX + "/{tail:.*}", "No console page is here")
async def no_such_page(visit: Visit) -> web.StreamResponse:
    raise not_found("No console page is here.")


def setup_console(app: web.Application) -> None:
    """Add the console's Jinja environment and routes (under /console) to `app`."""
    setup_templates(app)
    setup_background(app)  # backups and job runs started from the console
    for table in PAGE_TABLES:
        table.add_to(app)
    _fallback.add_to(app)  # last: an unknown /console path is an HTML 404, after sign-in
