"""The console's operations pages in-process, on both databases: outbox, jobs, backups, short
links and releases render, their actions do what they say and are in the audit log, and every
POST without the session's CSRF token is refused having changed nothing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from lucky_server.clock import FakeClock
from lucky_server.storage import Tx
from lucky_server.storage.stores.outbox import DeliveryStore, Outcome

from .conftest import ADMIN, Console, hidden


async def _audit_actions(console: Console) -> list[tuple[str, str, str]]:
    page = await console.core.audit.page(limit=100)
    return [(e.actor, e.action, e.target) for e in page.entries]


def _flash(html: str) -> str:
    found = re.search(r'<p class="flash" role="status">([^<]*)</p>', html)
    assert found, html[:2000]
    return found.group(1)


async def _follow(console: Console, status: int, headers: dict[str, str]) -> str:
    assert status == 303, headers
    status, html, _ = await console.get(headers["Location"])
    assert status == 200, html
    return html


async def _failed_pushes(console: Console, count: int, clock: FakeClock, pending: int = 0) -> None:
    """`count` push deliveries that had every attempt, and `pending` more to be retried in a minute."""
    core = console.core
    now = clock.now_ms()

    async def fill(tx: Tx) -> None:
        await DeliveryStore(core.db).add(tx, [(n, "push", "{}") for n in range(1, count + pending + 1)], now)

    await core.db.transaction("fill", fill)
    store = DeliveryStore(core.db)
    claimed = await store.claim(now, 60_000, 100)
    await store.record([Outcome(c.key, done=False, next_at=now + c.key, failed=True, error=f"HTTP 500 <b>{c.key}</b>")
                        if c.key <= count else Outcome(c.key, done=False, next_at=now + 60_000) for c in claimed])


async def test_outbox_page_lists_failed_rows_by_page_and_retries_them(admin_console: Console, clock: FakeClock) -> None:
    await _failed_pushes(admin_console, 55, clock, pending=3)
    status, html, _ = await admin_console.get("/console/outbox")
    assert status == 200 and "<h1>Outbox</h1>" in html
    assert re.search(r'data-kind="push"><td>push</td><td class="pending">3</td><td class="failed">55</td>', html)
    assert html.count("HTTP 500 &lt;b&gt;") == 50 and "<b>" not in html  # escaped, 50 a page
    next_url = re.search(r'href="([^"]+)" rel="next"', html)
    assert next_url
    status, second, _ = await admin_console.get(next_url.group(1).replace("&amp;", "&"))
    assert status == 200 and second.count("HTTP 500 &lt;b&gt;") == 5 and 'rel="next"' not in second

    csrf = hidden(html, "csrf")
    status, html, headers = await admin_console.post("/console/outbox/retry", {"csrf": csrf, "failed": "1"})
    page = await _follow(admin_console, status, headers)
    assert _flash(page) == ("55 failed row(s) made pending and due now (message 0, push 55): "
                            "the outbox job sends them next.")
    assert re.search(r'data-kind="push"><td>push</td><td class="pending">58</td><td class="failed">0</td>', page)
    assert (ADMIN, "outbox.retry_failed", "outbox") in await _audit_actions(admin_console)
    status, html, headers = await admin_console.post("/console/outbox/retry", {"csrf": csrf})
    # The revived rows are due already; the 3 waiting for their next attempt are made due.
    assert "3 pending row(s) made due now (message 0, push 3)" in _flash(await _follow(admin_console, status, headers))

    status, html, _ = await admin_console.get("/console/outbox?kind=mail")
    assert status == 422 and "kind: one of message, push" in html


async def test_jobs_page_runs_a_job_and_shows_its_last_run(admin_console: Console) -> None:
    status, html, _ = await admin_console.get("/console/jobs")
    assert status == 200 and 'data-job="cleanup.sessions"' in html
    row = html.split('data-job="cleanup.sessions"')[1].split("</tr>")[0]
    assert "never" in row
    status, html, headers = await admin_console.post("/console/jobs/cleanup.sessions/run",
                                                     {"csrf": hidden(html, "csrf")})
    page = await _follow(admin_console, status, headers)
    assert _flash(page).startswith("cleanup.sessions: ok: ")
    row = page.split('data-job="cleanup.sessions"')[1].split("</tr>")[0]
    assert "never" not in row and '<span class="tag">ok</span>' in row
    assert (ADMIN, "job.run", "cleanup.sessions") in await _audit_actions(admin_console)
    status, html, _ = await admin_console.post("/console/jobs/no.such.job/run", {"csrf": hidden(page, "csrf")})
    assert status == 404 and "No job named" in html


async def test_backup_taken_from_the_page_is_listed_and_downloads_with_its_bytes(admin_console: Console) -> None:
    status, html, _ = await admin_console.get("/console/backups")
    assert status == 200 and "No archives yet." in html
    status, _, headers = await admin_console.post("/console/backups/run", {"csrf": hidden(html, "csrf")})
    page = await _follow(admin_console, status, headers)
    assert _flash(page).startswith("Backup done: wrote lucky-backup-")
    names = re.findall(r'<tr data-name="([^"]+)">', page)
    assert len(names) == 1 and names[0].startswith("lucky-backup-")
    where = admin_console.core.config.data_dir / "backups" / names[0]
    async with admin_console.client.get(f"/console/backups/{names[0]}/download") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"].startswith(f'attachment; filename="{names[0]}"')
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert await resp.read() == where.read_bytes()
    actions = await _audit_actions(admin_console)
    assert (ADMIN, "backup.run", str(where.parent)) in actions and (ADMIN, "backup.download", names[0]) in actions


async def test_backup_download_takes_only_archive_names_and_a_console_session(admin_console: Console,
                                                                             tmp_path: Path) -> None:
    secrets_file = admin_console.core.config.secrets_dir
    assert secrets_file.is_dir()
    for name in ("..%2Fsecrets%2Fjwt.key", "%2E%2E", "lucky.toml", "lucky-backup-20260101-000000-000.tar%00",
                 "lucky-backup-20260101-000000-000.tar"):  # the last: a good name, but no such archive
        status, html, _ = await admin_console.get(f"/console/backups/{name}/download")
        assert status == 404, (name, html)
    # An API token is not a console session; a signed-out browser is sent to sign in.
    async with aiohttp.ClientSession() as anonymous:
        url = admin_console.client.make_url("/console/backups/lucky-backup-20260101-000000-000.tar/download")
        async with anonymous.get(url, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")


async def test_short_link_created_on_the_page_redirects_counts_and_is_deleted(admin_console: Console) -> None:
    status, html, _ = await admin_console.get("/console/links")
    assert status == 200 and "No short links yet." in html
    csrf = hidden(html, "csrf")
    status, _, headers = await admin_console.post("/console/links", {"csrf": csrf, "url": "https://example.org/a?b=<c>",
                                                                     "code": "promo", "expires": ""})
    assert headers["Location"] == "/console/links/promo"
    page = await _follow(admin_console, status, headers)
    assert _flash(page).startswith("Created ") and _flash(page).endswith("/s/promo.")
    assert "https://example.org/a?b=&lt;c&gt;" in page
    for _ in range(3):
        async with admin_console.client.get("/s/promo", allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] in ("https://example.org/a?b=<c>", "https://example.org/a?b=%3Cc%3E")
    status, page, _ = await admin_console.get("/console/links/promo?days=7")
    assert status == 200 and '<dd id="visits-days">3</dd>' in page
    assert page.count('<rect class="bar"') == 7 and 'data-visits="3"' in page
    status, html, _ = await admin_console.get("/console/links/promo?days=8")
    assert status == 422

    status, _, headers = await admin_console.post("/console/links", {"csrf": csrf, "url": "javascript:alert(1)"})
    assert status == 422
    status, _, headers = await admin_console.post("/console/links/promo/delete", {"csrf": csrf})
    page = await _follow(admin_console, status, headers)
    assert "Deleted promo" in _flash(page) and "No short links yet." in page
    async with admin_console.client.get("/s/promo", allow_redirects=False) as resp:
        assert resp.status == 404
    actions = await _audit_actions(admin_console)
    assert (ADMIN, "link.create", "promo") in actions and (ADMIN, "link.delete", "promo") in actions


async def _upload(console: Console, csrf: str | None, version: str, *, publish: bool, package: bytes = b"PKG" * 1000,
                  rollout: str = "100") -> tuple[int, str, dict[str, str]]:
    form = aiohttp.FormData()
    for name, value in (("platform", "android"), ("channel", "stable"), ("version", version), ("arch", ""),
                        ("min_version", ""), ("rollout", rollout), ("notes", "Fixes <b>things</b>")):
        form.add_field(name, value)
    if publish:
        form.add_field("publish", "true")
    form.add_field("file", package, filename="app.apk", content_type="application/vnd.android.package-archive")
    path = "/console/releases" + (f"?csrf={csrf}" if csrf is not None else "")
    async with console.client.post(path, data=form, allow_redirects=False) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def _check(console: Console, version: str = "1.0.0") -> dict[str, object]:
    async with console.client.get(f"/api/v1/releases/check?platform=android&version={version}&device_id=d1") as resp:
        assert resp.status == 200
        body: dict[str, object] = await resp.json()
        return body


async def test_release_uploaded_published_rolled_out_and_yanked_from_the_page(admin_console: Console) -> None:
    status, html, _ = await admin_console.get("/console/releases")
    assert status == 200 and "No releases" in html
    csrf = hidden(html, "csrf")
    status, body, headers = await _upload(admin_console, csrf, "1.2.0", publish=False)
    page = await _follow(admin_console, status, headers)
    assert _flash(page) == "Release android stable 1.2.0 uploaded (3000 bytes), a draft: publish it to offer it."
    assert "Fixes &lt;b&gt;things&lt;/b&gt;" in page
    release_id = re.search(r'data-release="(\d+)" data-version="1.2.0" data-state="draft"', page)
    assert release_id
    assert (await _check(admin_console))["latest"] is None  # a draft is not offered

    status, _, headers = await admin_console.post(f"/console/releases/{release_id.group(1)}/publish",
                                                  {"csrf": csrf, "back": "/console/releases?platform=android"})
    assert headers["Location"] == "/console/releases?platform=android"
    assert "published" in _flash(await _follow(admin_console, status, headers))
    offered = await _check(admin_console)
    assert offered["update"] is True and offered["latest"]["version"] == "1.2.0"  # type: ignore[index]
    url = urlsplit(offered["latest"]["download_url"])  # type: ignore[index]
    async with admin_console.client.get(f"{url.path}?{url.query}") as resp:
        assert resp.status == 200 and await resp.read() == b"PKG" * 1000

    status, _, headers = await admin_console.post(f"/console/releases/{release_id.group(1)}/rollout",
                                                  {"csrf": csrf, "rollout": "0", "back": "https://evil.example/"})
    assert headers["Location"] == "/console/releases"  # `back` only ever to the releases page
    assert "now reaches 0% of devices" in _flash(await _follow(admin_console, status, headers))
    assert (await _check(admin_console))["latest"] is None
    status, html, _ = await admin_console.post(f"/console/releases/{release_id.group(1)}/rollout",
                                               {"csrf": csrf, "rollout": "101"})
    assert status == 422 and "rollout" in html

    status, _, headers = await admin_console.post(f"/console/releases/{release_id.group(1)}/yank", {"csrf": csrf})
    page = await _follow(admin_console, status, headers)
    assert "yanked" in _flash(page) and 'data-state="yanked"' in page

    status, html, _ = await _upload(admin_console, csrf, "1.2.0", publish=True)
    assert status == 409 and "versions are never reused" in html
    actions = [(actor, action) for actor, action, _ in await _audit_actions(admin_console)]
    for action in ("release.create", "release.publish", "release.update", "release.yank"):
        assert (ADMIN, action) in actions


async def test_every_ops_post_without_the_csrf_token_changes_nothing(admin_console: Console,
                                                                     clock: FakeClock) -> None:
    await _failed_pushes(admin_console, 2, clock)
    core = admin_console.core
    link, _ = await core.links.create((await core.users.by_username(ADMIN)).id, "https://example.org/", code="keep",
                                      operator=True)
    before = len(await _audit_actions(admin_console))
    for path, data in (("/console/outbox/retry", {"failed": "1"}), ("/console/jobs/cleanup.sessions/run", {}),
                       ("/console/backups/run", {}), ("/console/links", {"url": "https://example.org/new"}),
                       ("/console/links/keep/delete", {}), ("/console/releases/1/publish", {}),
                       ("/console/releases/1/yank", {}), ("/console/releases/1/rollout", {"rollout": "5"})):
        for token in ({}, {"csrf": "forged"}):
            status, html, _ = await admin_console.post(path, {**data, **token})
            assert status == 403 and "security token" in html, (path, html[:300])
    for csrf in (None, "forged"):
        status, html, _ = await _upload(admin_console, csrf, "2.0.0", publish=True)
        assert status == 403 and "security token" in html
    assert (await core.outbox.failed("push")).rows != []
    assert (await core.links.get("keep", None)).code == "keep"
    assert (await core.links.list_all(None, 10))[0] == [link]
    assert (await core.releases.page(10))[0] == []
    assert not (core.config.data_dir / "backups").exists()
    status, html, _ = await admin_console.get("/console/jobs")
    assert "never" in html.split('data-job="cleanup.sessions"')[1].split("</tr>")[0]
    assert len(await _audit_actions(admin_console)) == before
