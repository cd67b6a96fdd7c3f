"""The outbox page: per kind (`message`: stored messages not yet dispatched; `push`: offline
push notifications the gateway has not taken) what is pending and failed, the failed rows a
page at a time with their last error, and retrying (`lucky outbox retry [--failed]`)."""

from __future__ import annotations

from aiohttp import web

from lucky_server.outbox.service import KINDS

from ..web import PREFIX, Pages, Visit

pages = Pages()

PAGE = 50


@pages.get(f"{PREFIX}/outbox", "The outbox: pending and failed rows; retry")
async def outbox(visit: Visit) -> web.StreamResponse:
    service = visit.core.outbox
    statuses = await service.status()
    failed_kinds = [s.kind for s in statuses if s.failed]
    kind = visit.query("kind") or (failed_kinds[0] if failed_kinds else KINDS[0])
    cursor = visit.query("cursor") or None
    page = await service.failed(kind, cursor, PAGE)
    return visit.render(
        "outbox.html", title="Outbox", statuses=statuses, kinds=KINDS, kind=kind, page=page,
        push_enabled=service.deliveries.enabled, every_s=visit.core.config.jobs.outbox_every_s,
        next_url=visit.url(f"{PREFIX}/outbox", kind=kind, cursor=page.next_cursor) if page.next_cursor else "",
        first_url=visit.url(f"{PREFIX}/outbox", kind=kind) if cursor else "")


@pages.post(f"{PREFIX}/outbox/retry", "Retry pending rows now, or failed rows")
async def retry(visit: Visit) -> web.StreamResponse:
    failed = visit.field("failed") == "1"
    counts = await visit.core.outbox.retry(failed=failed)
    total = sum(counts.values())
    await visit.audit("outbox.retry_failed" if failed else "outbox.retry", "outbox", dict(counts))
    each = ", ".join(f"{kind} {n}" for kind, n in counts.items())
    if failed:
        flash = f"{total} failed row(s) made pending and due now ({each}): the outbox job sends them next."
    else:
        flash = f"{total} pending row(s) made due now ({each}): the outbox job sends them next."
    await visit.redirect(f"{PREFIX}/outbox", flash=flash)
