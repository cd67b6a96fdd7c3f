"""The users page, in-process on both databases: search, pages, one user, the admin actions."""

from __future__ import annotations

import re

from lucky_server.storage import Tx

from .conftest import Console, hidden


async def _post(console: Console, path: str, **fields: str) -> tuple[int, str, dict[str, str]]:
    return await console.post(path, {"csrf": await console.csrf(), **fields})


async def test_search_by_prefix_and_keyset_pages(admin_console: Console) -> None:
    core = admin_console.core
    for i in range(60):
        await core.auth.create_user(f"pat{i:03d}", None, f"Pat {i}")
    await core.auth.create_user("zed", None)
    status, html, _ = await admin_console.get("/console/users?q=pat")
    assert status == 200
    shown = re.findall(r'<a href="/console/users/\d+">(pat\d+)</a>', html)
    assert shown == [f"pat{i:03d}" for i in range(50)]
    assert "zed" not in html
    next_url = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert next_url is not None
    status, html, _ = await admin_console.get(next_url.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/console/users/\d+">(pat\d+)</a>', html) == [f"pat{i:03d}" for i in range(50, 60)]
    assert 'rel="next"' not in html
    status, html, _ = await admin_console.get("/console/users?q=nobody-here")
    assert status == 200 and "No user whose username starts with" in html
    # A cursor this server never issued is a page with the error, not a 500.
    status, html, _ = await admin_console.get("/console/users?after=garbage")
    assert status == 400 and 'role="alert"' in html


async def test_a_hostile_display_name_is_shown_as_text(admin_console: Console) -> None:
    user = await admin_console.core.auth.create_user("mallory", None, "<script>alert(1)</script>")
    for path in ("/console/users?q=mal", f"/console/users/{user.id}"):
        status, html, _ = await admin_console.get(path)
        assert status == 200
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_disable_enable_logout_promote_demote_are_done_and_audited(admin_console: Console) -> None:
    core = admin_console.core
    user = await core.auth.create_user("carol", "carol secret 1")
    path = f"/console/users/{user.id}"
    status, _, headers = await _post(admin_console, f"{path}/disable")
    assert status == 303 and headers["Location"] == path
    assert (await core.users.get(user.id)).disabled
    status, html, _ = await admin_console.get(path)
    assert "carol is disabled; their sessions are ended." in html  # the flash, once
    assert "carol is disabled" not in (await admin_console.get(path))[1]
    await _post(admin_console, f"{path}/enable")
    assert not (await core.users.get(user.id)).disabled
    await _post(admin_console, f"{path}/logout")
    await _post(admin_console, f"{path}/promote")
    assert (await core.users.get(user.id)).is_admin
    await _post(admin_console, f"{path}/demote")
    assert not (await core.users.get(user.id)).is_admin
    actions = [(e.actor, e.action, e.target) for e in (await core.audit.page()).entries]
    assert actions[:5] == [("boss", a, str(user.id)) for a in
                           ("user.demote", "user.promote", "user.logout", "user.enable", "user.disable")]


async def test_an_admin_cannot_disable_or_demote_themself_and_the_last_admin_stays(admin_console: Console) -> None:
    core = admin_console.core
    boss = await core.users.by_username("boss")
    for action in ("disable", "demote"):
        status, html, _ = await _post(admin_console, f"/console/users/{boss.id}/{action}")
        assert status == 409 and "your own account" in html
    boss = await core.users.get(boss.id)
    assert boss.is_admin and not boss.disabled
    # The last enabled admin is never demoted from the console (a disabled admin does not count).
    other = await core.auth.create_user("other", None, is_admin=True)
    await core.auth.set_disabled(other.id, True)
    assert await core.auth.is_last_admin(boss.id)
    status, _, _ = await _post(admin_console, f"/console/users/{other.id}/demote")
    assert status == 303
    await core.auth.set_admin(other.id, True)
    await core.auth.set_disabled(other.id, False)
    await core.auth.set_admin(boss.id, False)  # behind the console's back: `other` is now the last
    assert await core.auth.is_last_admin(other.id)
    await core.auth.set_admin(boss.id, True)
    status, html, _ = await _post(admin_console, f"/console/users/{other.id}/demote")
    assert status == 303
    assert await core.auth.is_last_admin(boss.id)


async def test_reset_password_generated_once_or_given(admin_console: Console, api: object) -> None:
    core = admin_console.core
    user = await core.auth.create_user("dave", "dave secret 1")
    status, html, _ = await _post(admin_console, f"/console/users/{user.id}/password")
    assert status == 200
    generated = re.search(r'<span class="secret" id="new-password">([^<]+)</span>', html)
    assert generated is not None
    assert await core.auth.verify_credentials("dave", generated.group(1))
    assert generated.group(1) not in (await admin_console.get(f"/console/users/{user.id}"))[1]  # shown once
    status, _, _ = await _post(admin_console, f"/console/users/{user.id}/password", password="chosen secret 2")
    assert status == 303
    assert await core.auth.verify_credentials("dave", "chosen secret 2")
    status, html, _ = await _post(admin_console, f"/console/users/{user.id}/password", password="short")
    assert status == 422 and 'role="alert"' in html
    assert await core.auth.verify_credentials("dave", "chosen secret 2")  # unchanged


async def test_user_page_shows_devices_sessions_and_groups(admin_console: Console, api: object) -> None:
    core = admin_console.core
    erin = await core.auth.create_user("erin", "erin secret 1")
    frank = await core.auth.create_user("frank", "frank secret 1")
    async with admin_console.client.post("/api/v1/auth/login", json={
            "username": "erin", "password": "erin secret 1",
            "device": {"id": "phone-1", "name": "Erin's phone", "platform": "android"}}) as resp:
        assert resp.status == 200, await resp.text()
    await core.groups.create(erin.id, "Erin's club", [frank.id])
    status, html, _ = await admin_console.get(f"/console/users/{erin.id}")
    assert status == 200
    assert "phone-1" in html and "Erin&#39;s phone" in html and "android" in html
    assert "Erin&#39;s club" in html
    assert "Not signed in anywhere." not in html
    assert "Not signed in anywhere." in (await admin_console.get(f"/console/users/{frank.id}"))[1]


async def test_unknown_user_is_a_404_page(admin_console: Console) -> None:
    for path in ("/console/users/123", "/console/users/abc"):
        status, html, _ = await admin_console.get(path)
        assert status == 404 and 'role="alert"' in html


async def test_the_users_page_answers_with_100000_users(admin_console: Console) -> None:
    core = admin_console.core
    now = core.clock.now_ms()
    rows = [(10_000_000 + i, f"user{i:06d}", f"User {i}", None, None, None, False, False, now, now)
            for i in range(100_000)]

    async def seed(tx: Tx) -> None:
        await tx.executemany(
            "INSERT INTO users (id, username, display_name, password_hash, phone, avatar_file_id, is_admin, "
            "disabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    await core.db.transaction("seed_users", seed)
    status, html, _ = await admin_console.get("/console/users")
    assert status == 200
    assert "boss" in html and len(re.findall(r'<a href="/console/users/\d+">', html)) == 50
    status, html, _ = await admin_console.get("/console/users?q=user0999")
    assert re.findall(r'<a href="/console/users/\d+">(user\d+)</a>', html) == [f"user0999{i:02d}" for i in range(50)]
    next_url = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert next_url is not None
    status, html, _ = await admin_console.get(next_url.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/console/users/\d+">(user\d+)</a>', html) == [f"user0999{i:02d}" for i in range(50, 100)]
    assert hidden(html, "csrf")
