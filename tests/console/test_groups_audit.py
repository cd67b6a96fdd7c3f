"""The groups and audit pages, in-process on both databases."""

from __future__ import annotations

import re

from .conftest import Console


async def _post(console: Console, path: str, **fields: str) -> tuple[int, str, dict[str, str]]:
    return await console.post(path, {"csrf": await console.csrf(), **fields})


async def test_groups_search_members_and_dismiss(admin_console: Console) -> None:
    core = admin_console.core
    owner = await core.auth.create_user("owner", None)
    members = [await core.auth.create_user(f"member{i:02d}", None) for i in range(55)]
    club = await core.groups.create(owner.id, "Chess club", [m.id for m in members])
    await core.groups.create(owner.id, "Cheese lovers", [members[0].id])
    await core.groups.create(owner.id, "<b>Knitting</b>", [members[1].id])

    status, html, _ = await admin_console.get("/console/groups")
    assert status == 200 and "Chess club" in html and "&lt;b&gt;Knitting&lt;/b&gt;" in html
    status, html, _ = await admin_console.get("/console/groups?q=Che")
    assert re.findall(r'<a href="/console/groups/\d+">([^<]+)</a>', html) == ["Cheese lovers", "Chess club"]
    status, html, _ = await admin_console.get("/console/groups?q=Chess")
    assert re.findall(r'<a href="/console/groups/\d+">([^<]+)</a>', html) == ["Chess club"]
    status, html, _ = await admin_console.get(f"/console/groups?q={club.id}")
    assert re.findall(r'<a href="/console/groups/\d+">([^<]+)</a>', html) == ["Chess club"]
    status, html, _ = await admin_console.get("/console/groups?q=%00x")
    assert status == 200 and "No group matches" in html

    # Members, 50 a page: the owner and 49 members, then the 6 others.
    status, html, _ = await admin_console.get(f"/console/groups/{club.id}")
    names = re.findall(r'<a href="/console/users/\d+">([^<]+)</a></td>', html)
    assert len(names) == 50 and names[0] == "owner"
    next_url = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert next_url is not None
    status, html, _ = await admin_console.get(next_url.group(1).replace("&amp;", "&"))
    assert len(re.findall(r'<a href="/console/users/\d+">([^<]+)</a></td>', html)) == 6

    status, _, headers = await _post(admin_console, f"/console/groups/{club.id}/dismiss")
    assert status == 303 and headers["Location"] == f"/console/groups/{club.id}"
    assert (await core.groups.get(club.id)).dismissed
    status, html, _ = await admin_console.get(f"/console/groups/{club.id}")
    assert "is dismissed; its members were told." in html and "Dismiss this group" not in html
    status, html, _ = await _post(admin_console, f"/console/groups/{club.id}/dismiss")
    assert status == 409
    entries = (await core.audit.page(action="group.dismiss")).entries
    assert [(e.actor, e.target, e.details) for e in entries] == [("boss", str(club.id), {"name": "Chess club"})]


async def test_unknown_group_is_a_404_page(admin_console: Console) -> None:
    for path in ("/console/groups/42", "/console/groups/x"):
        status, html, _ = await admin_console.get(path)
        assert status == 404 and 'role="alert"' in html


async def test_audit_page_lists_newest_first_filters_and_pages(admin_console: Console) -> None:
    core = admin_console.core
    users = [await core.auth.create_user(f"target{i:02d}", None) for i in range(30)]
    boss = await core.users.by_username("boss")
    for user in users:
        await core.auth.set_disabled(user.id, True, actor_id=boss.id)
        await core.auth.set_disabled(user.id, False, actor_id=boss.id)
    status, html, _ = await admin_console.get("/console/audit")
    assert status == 200
    rows = re.findall(r'action=([a-z.]+)">[a-z.]+</a></td>\s*<td>(\d+)</td>', html)
    assert rows[0] == ("user.enable", str(users[-1].id)) and rows[1] == ("user.disable", str(users[-1].id))
    assert len(rows) == 50
    next_url = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert next_url is not None
    status, html, _ = await admin_console.get(next_url.group(1).replace("&amp;", "&"))
    older = re.findall(r'action=([a-z.]+)">[a-z.]+</a></td>\s*<td>(\d+)</td>', html)
    assert older[0] == ("user.enable", str(users[4].id))
    # Filters: by action, by actor; an unknown actor shows nothing.
    status, html, _ = await admin_console.get("/console/audit?action=user.disable")
    assert {a for a, _ in re.findall(r'action=([a-z.]+)">[a-z.]+</a></td>\s*<td>(\d+)</td>', html)} == {"user.disable"}
    status, html, _ = await admin_console.get("/console/audit?actor=boss&action=console.login")
    assert len(re.findall(r'action=console.login">', html)) == 1
    status, html, _ = await admin_console.get("/console/audit?actor=nobody")
    assert status == 200 and "No entry matches." in html
