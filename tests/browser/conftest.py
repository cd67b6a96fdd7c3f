"""A real headless Chromium (Debian's `chromium`, never a downloaded browser) driving a real
`lucky serve`, for the console and the web chat page.

Playwright's sync API, so browser tests are plain (not async) test functions; the server is a
subprocess, as an operator runs it. Screenshots go to `test-artifacts/screenshots/` (or
`$LUCKY_TEST_ARTIFACTS/screenshots/`), kept after the run as the issue asks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.process import Served, lucky
from tests.services import IN_CI

CHROMIUM = os.environ.get("LUCKY_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN_USERNAME = "root"
ADMIN_PASSWORD = "admin secret 1"
ARTIFACTS = Path(os.environ.get("LUCKY_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set LUCKY_TEST_CHROMIUM)"
    if IN_CI:
        pytest.fail(message + "; CI must provide it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium per test worker; each test opens its own contexts (cookies, storage)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `lucky init` per worker, with the admin `root`."""
    path = tmp_path_factory.mktemp("browser-site") / "data"
    result = lucky("init", "--data-dir", path, "--non-interactive", "--admin-username", ADMIN_USERNAME,
                   "--admin-password", ADMIN_PASSWORD)
    assert result.code == 0, result
    return path


@pytest.fixture
def site(site_template: Path, tmp_path: Path) -> Iterator[Served]:
    """A private copy of the instance, served by a real `lucky serve` on a free port
    (`site.url`; `site.call(...)` and `site.login(...)` speak its HTTP API)."""
    data = tmp_path / "data"
    shutil.copytree(site_template, data)
    server = Served("--data-dir", data)
    try:
        server.wait_listening()
        yield server
    finally:
        server.kill()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test-run artefact; the path."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^a-z0-9_.-]+", "-", name.lower()) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
