"""The console's operations pages in a real Chromium against a real `lucky serve`: a failed
push retried from the outbox page reaches the gateway, a backup run from the page is listed and
downloads with its bytes, a job run from the page updates its last run, a release uploaded
through the page (with its progress bar, and without JavaScript) is offered by the update
check, a short link created on the page redirects and its visit shows in its stats; a form
whose CSRF token was tampered with is refused on each page. A screenshot of each page."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.cli.process import Served, clean_env
from tests.links.test_cli import _status_and_location
from tests.outbox.receiver import SECRET, ThreadedReceiver
from tests.outbox.test_served import gateway  # noqa: F401 - the recording push gateway fixture

from .test_browser_login import sign_in

DEADLINE_S = 40.0


def _eventually(check: Callable[[], bool], what: str, page: Any | None = None) -> None:
    """Wait until `check()` (reloading `page` between tries); fail naming `what`."""
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.3)
        if page is not None:
            page.reload()


def _flash(page: Any) -> str:
    return str(page.locator("p.flash").inner_text())


def _register(site: Served, username: str) -> dict[str, Any]:
    status, body = site.call("POST", "/api/v1/auth/register", {"username": username, "password": f"{username} secret 1"})
    assert status == 201, body
    return dict(body)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        data: bytes = resp.read()
        return data


def _csrf_refused(page: Any, form: str) -> None:
    """Submit `form` (a selector) with its CSRF token replaced: the 403 page, nothing done."""
    page.locator(f"{form} input[name=csrf]").first.evaluate("el => { el.value = 'forged'; }")
    page.locator(f"{form} button[type=submit]").first.click()
    page.wait_for_load_state()
    assert "security token" in page.locator("main").inner_text()


@pytest.fixture
def pushing_site(site_template: Path, tmp_path: Path, gateway: ThreadedReceiver) -> Iterator[Served]:
    """The browser tests' instance served with offline push to `gateway`, one attempt per push,
    the outbox job every second."""
    data = tmp_path / "data"
    shutil.copytree(site_template, data)
    server = Served("--data-dir", data, env=clean_env(
        LUCKY_PUSH__WEBHOOK_URL=gateway.receiver.url, LUCKY_PUSH__WEBHOOK_SECRET=SECRET, LUCKY_PUSH__MAX_ATTEMPTS="1",
        LUCKY_PUSH__TIMEOUT_S="2", LUCKY_JOBS__OUTBOX_EVERY_S="1"))
    try:
        server.wait_listening()
        yield server
    finally:
        server.kill()


def test_a_failed_push_retried_from_the_outbox_page_reaches_the_gateway(
        browser: Any, pushing_site: Served, gateway: ThreadedReceiver) -> None:
    site = pushing_site
    gateway.answer(then="500")
    alice, bob = _register(site, "alice"), _register(site, "bob")
    low, high = sorted((int(alice["user"]["id"]), int(bob["user"]["id"])))
    status, body = site.call("POST", f"/api/v1/conversations/p:{low}:{high}/messages",
                             {"client_msg_id": "c1", "kind": "text", "body": {"text": "are you there?"}},
                             token=alice["access_token"])
    assert status == 201, body
    first = gateway.wait_hits(1)[0]
    assert first.answer == "500"

    page = sign_in(browser, site)
    page.goto(site.url + "/console/outbox")
    _eventually(lambda: page.locator("tr[data-kind=push] td.failed").inner_text() == "1", "the push marked failed",
                page)
    page.goto(site.url + "/console/outbox?kind=push")
    failed = page.locator("#failed-rows tbody tr")
    assert failed.count() == 1 and "500" in failed.inner_text()
    screenshot(page, "console-outbox")

    _csrf_refused(page, "form:has(input[name=failed])")
    assert len(gateway.receiver.hits) == 1
    page.goto(site.url + "/console/outbox?kind=push")

    gateway.answer(then="200")
    page.click("button:has-text('Retry failed')")
    page.wait_for_selector("p.flash")
    assert _flash(page).startswith("1 failed row(s) made pending and due now (message 0, push 1)")
    hits = gateway.wait_hits(2, timeout=DEADLINE_S)
    assert [h.answer for h in hits] == ["500", "200"]
    assert hits[1].body == hits[0].body and hits[1].signed
    assert hits[1].json["user_id"] == bob["user"]["id"]
    _eventually(lambda: page.locator("tr[data-kind=push]").inner_text().split("\t")[1:3] == ["0", "0"],
                "the push delivered and gone from the outbox", page)
    page.context.close()


def test_a_backup_run_from_the_page_is_listed_and_downloads_with_its_bytes(
        browser: Any, site: Served, tmp_path: Path) -> None:
    page = sign_in(browser, site)
    page.goto(site.url + "/console/backups")
    assert "No archives yet." in page.locator("main").inner_text()
    _csrf_refused(page, "form[action='/console/backups/run']")
    assert not (tmp_path / "data" / "backups").exists()

    page.goto(site.url + "/console/backups")
    page.click("button:has-text('Back up now')")
    page.wait_for_selector("p.flash")
    # A small instance's backup is done before the page answers; else it shows as running.
    _eventually(lambda: page.locator("#archives tbody tr").count() == 1, "the archive listed", page)
    name = page.locator("#archives tbody tr").get_attribute("data-name")
    assert name is not None and name.startswith("lucky-backup-") and name.endswith(".tar")
    assert page.locator("#backup-run").get_attribute("data-state") == "ok"
    screenshot(page, "console-backups")

    with page.expect_download() as info:
        page.click(f"tr[data-name='{name}'] a:has-text('Download')")
    download = info.value
    assert download.suggested_filename == name
    saved = tmp_path / "downloaded.tar"
    download.save_as(saved)
    assert saved.read_bytes() == (tmp_path / "data" / "backups" / name).read_bytes()
    page.context.close()


def test_a_job_run_from_the_page_updates_its_last_run(browser: Any, site: Served) -> None:
    page = sign_in(browser, site)
    page.goto(site.url + "/console/jobs")
    row = page.locator("tr[data-job='cleanup.sessions']")
    assert row.locator("td.last-run").inner_text() == "never"
    _csrf_refused(page, "tr[data-job='cleanup.sessions'] form")
    page.goto(site.url + "/console/jobs")
    assert row.locator("td.last-run").inner_text() == "never"

    row.locator("button:has-text('Run now')").click()
    page.wait_for_selector("p.flash")
    assert _flash(page).startswith("cleanup.sessions: ok: ")
    row = page.locator("tr[data-job='cleanup.sessions']")
    assert row.locator("td.last-run").inner_text() != "never"
    assert row.locator("td.outcome .tag").inner_text() == "ok"
    screenshot(page, "console-jobs")
    page.context.close()


def _check(site: Served, version: str = "1.0.0") -> dict[str, Any]:
    status, body = site.call("GET", f"/api/v1/releases/check?platform=android&version={version}&device_id=d1")
    assert status == 200, body
    return dict(body)


def _fill_release(page: Any, version: str, package: bytes, *, publish: bool) -> None:
    page.select_option("#upload select[name=platform]", "android")
    page.fill("#upload input[name=version]", version)
    page.fill("#upload textarea[name=notes]", "<script>alert(1)</script> faster")
    if publish:
        page.check("#upload input[name=publish]")
    page.set_input_files("#upload input[name=file]", files=[
        {"name": f"app-{version}.apk", "mimeType": "application/vnd.android.package-archive", "buffer": package}])


def test_a_release_uploaded_with_the_progress_bar_is_offered_by_the_check(browser: Any, site: Served) -> None:
    page = sign_in(browser, site)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors and CSP refusals; the 409 of the refused upload below is expected.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.resource_type)
            if r.method == "POST" and r.url.startswith(site.url + "/console/releases?") else None)
    page.goto(site.url + "/console/releases")
    assert _check(site)["latest"] is None

    package = bytes(range(256)) * 16 * 1024  # 4 MiB: the upload reports progress on the way
    _fill_release(page, "1.4.0", package, publish=True)
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-status:has-text('Uploaded')")
    assert uploads == ["xhr"]  # sent by the script, which followed its progress to the end:
    reported = page.locator("#upload-status").inner_text()
    assert reported.startswith("Uploaded: 100% of ") and int(reported.split()[3]) > len(package), reported
    assert page.locator("#upload-progress").get_attribute("value") == "100"
    assert _flash(page) == f"Release android stable 1.4.0 uploaded ({len(package)} bytes), published."
    row = page.locator("tr[data-version='1.4.0']")
    assert row.get_attribute("data-state") == "published"
    assert "<script>alert(1)</script> faster" in row.inner_text()  # shown as text
    screenshot(page, "console-releases")

    offered = _check(site)
    assert offered["update"] is True and offered["latest"]["version"] == "1.4.0"
    assert offered["latest"]["size"] == len(package)
    assert _fetch(offered["latest"]["download_url"]) == package

    # A failed upload (the version exists) says why next to the form, kept as filled.
    _fill_release(page, "1.4.0", b"again", publish=True)
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-status[role=alert]")
    assert "versions are never reused" in page.locator("#upload-status").inner_text()
    assert page.input_value("#upload input[name=version]") == "1.4.0"

    # Rollout 0 takes it out of the offer; yanking removes it for good.
    row.locator("input[name=rollout]").fill("0")
    row.locator("form.rollout button").click()
    page.wait_for_selector("p.flash")
    assert "now reaches 0% of devices" in _flash(page)
    assert _check(site)["latest"] is None
    _csrf_refused(page, "tr[data-version='1.4.0'] form:has(button:has-text('Yank'))")
    page.goto(site.url + "/console/releases")
    page.locator("tr[data-version='1.4.0'] button:has-text('Yank')").click()
    page.wait_for_selector("p.flash")
    assert page.locator("tr[data-version='1.4.0']").get_attribute("data-state") == "yanked"
    assert errors == []
    page.context.close()


def test_the_release_form_works_without_javascript(browser: Any, site: Served) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site.url + "/console")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "admin secret 1")
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/console")
    page.goto(site.url + "/console/releases")
    _fill_release(page, "2.0.0-beta.1", b"draft package", publish=False)
    page.click("#upload button[type=submit]")
    page.wait_for_selector("p.flash")
    assert _flash(page) == "Release android stable 2.0.0-beta.1 uploaded (13 bytes), a draft: publish it to offer it."
    assert _check(site)["latest"] is None  # a draft
    page.locator("tr[data-version='2.0.0-beta.1'] button:has-text('Publish')").click()
    page.wait_for_selector("p.flash")
    assert _check(site, "1.0.0")["latest"]["version"] == "2.0.0-beta.1"
    context.close()


def test_a_link_created_on_the_page_redirects_and_its_visit_shows_in_stats(browser: Any, site: Served) -> None:
    page = sign_in(browser, site)
    page.goto(site.url + "/console/links")
    assert "No short links yet." in page.locator("main").inner_text()
    page.fill("input[name=url]", "https://example.org/launch?from=console")
    page.fill("input[name=code]", "launch")
    page.click("form[action='/console/links'] button[type=submit]")
    page.wait_for_url(site.url + "/console/links/launch")
    assert _flash(page) == f"Created {site.url}/s/launch."
    assert page.locator("#visits-total").inner_text() == "0"

    assert _status_and_location(site.url + "/s/launch") == (302, "https://example.org/launch?from=console")
    page.reload()  # the stats page writes this node's counted visits first
    assert page.locator("#visits-total").inner_text() == "1"
    assert page.locator("#visits-days").inner_text() == "1"
    bars = page.locator("svg.bars rect.bar[data-visits='1']")
    assert bars.count() == 1
    screenshot(page, "console-link-stats")

    page.goto(site.url + "/console/links")
    assert page.locator("tr[data-code=launch]").count() == 1
    screenshot(page, "console-links")
    _csrf_refused(page, "tr[data-code=launch] form")
    assert _status_and_location(site.url + "/s/launch")[0] == 302
    page.goto(site.url + "/console/links")
    page.locator("tr[data-code=launch] button:has-text('Delete')").click()
    page.wait_for_selector("p.flash")
    assert _flash(page).startswith("Deleted launch")
    assert _status_and_location(site.url + "/s/launch")[0] == 404
    page.context.close()


def test_the_release_upload_refuses_a_forged_token(browser: Any, site: Served) -> None:
    page = sign_in(browser, site)
    page.goto(site.url + "/console/releases")
    page.locator("#upload").evaluate("f => { f.setAttribute('action', '/console/releases?csrf=forged'); }")
    _fill_release(page, "3.0.0", b"forged", publish=True)
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-status[role=alert]")
    assert "security token" in page.locator("#upload-status").inner_text()
    status, body = site.login("root", "admin secret 1")
    assert status == 200, body
    status, listed = site.call("GET", "/api/v1/admin/releases", token=body["access_token"])
    assert status == 200 and listed["items"] == [], json.dumps(listed)
    page.context.close()
