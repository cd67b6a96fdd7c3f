"""Groups: the newest first or a name-prefix search (keyset pages), one group with its
members (paged), and dismissing a group (through GroupService, which posts the system
message to its members)."""

from __future__ import annotations

from aiohttp import web

from lucky_server import cursors
from lucky_server.errors import LuckyError, not_found
from lucky_server.storage.stores.groups import GroupRow

from ..web import PREFIX, Pages, Visit

pages = Pages()
PAGE_SIZE = 50
_CURSOR = "console_groups"


def _group_id(visit: Visit) -> int:
    raw = visit.request.match_info["group_id"]
    if not raw.isdigit() or len(raw) > 20:
        raise not_found("No group has that id.")
    return int(raw)


@pages.get(f"{PREFIX}/groups", "Groups: the newest, or a search by name")
async def group_list(visit: Visit) -> web.StreamResponse:
    query = visit.query("q").strip()
    after = visit.query("after")
    groups = visit.core.groups
    rows: list[GroupRow]
    next_after = ""
    if query.isdigit() and len(query) <= 20:
        # An id: that group, if there is one.
        found = await groups.all_groups(int(query) + 1, 1)
        rows = [g for g in found if g.id == int(query)]
    elif query:
        parts = cursors.decode_cursor(after, _CURSOR, str, int) if after else None
        key = (str(parts[0]), int(parts[1])) if parts else None
        rows = await groups.named(query, key, PAGE_SIZE + 1)
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            next_after = cursors.encode_cursor(_CURSOR, rows[-1].name, rows[-1].id)
    else:
        before = int(after) if after.isdigit() and len(after) <= 20 else 2**63 - 1
        rows = await groups.all_groups(before, PAGE_SIZE + 1)
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            next_after = str(rows[-1].id)
    owners = await groups.usernames(sorted({g.owner_id for g in rows}))
    path = f"{PREFIX}/groups"
    return visit.render("groups.html", title="Groups", q=query, groups=rows, owners=owners,
                        next_url=visit.url(path, q=query, after=next_after) if next_after else "",
                        first_url=visit.url(path, q=query) if after else "")


@pages.get(f"{PREFIX}/groups/{{group_id}}", "One group and its members")
async def group_page(visit: Visit) -> web.StreamResponse:
    group_id = _group_id(visit)
    groups = visit.core.groups
    group = await groups.get(group_id)
    after = visit.query("after") or None
    members, next_cursor = await groups.member_page(group_id, after, PAGE_SIZE)
    names = await groups.usernames([m.user_id for m in members] + [group.owner_id])
    path = f"{PREFIX}/groups/{group_id}"
    return visit.render("group.html", title=group.name, group=group, members=members, names=names,
                        next_url=visit.url(path, after=next_cursor) if next_cursor else "",
                        first_url=path if after else "")


@pages.post(f"{PREFIX}/groups/{{group_id}}/dismiss", "Dismiss a group")
async def dismiss(visit: Visit) -> web.StreamResponse:
    group_id = _group_id(visit)
    group = await visit.core.groups.get(group_id)
    if group.dismissed:
        raise LuckyError(409, "conflict", "This group is already dismissed.")
    await visit.core.groups.dismiss(visit.admin.id, group_id, as_operator=True)
    await visit.audit("group.dismiss", str(group_id), {"name": group.name})
    await visit.redirect(f"{PREFIX}/groups/{group_id}", f"The group {group.name} is dismissed; its members were told.")
