"""`PackagedFiles`, behind `/static/` and the chat page: only shipped files of the served
types, nothing outside the package, and a 304 for a browser whose copy is current."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from lucky_server.web.static import PackagedFiles
from tests.cli.process import Served


@pytest.mark.parametrize("path", [
    "static/../__init__.py", "../server/app.py", "static/chat/../../__init__.py", "__init__.py",
    "static//chat/chat.js", "static/chat/.hidden.js", "/etc/passwd", "static\\chat\\chat.js",
    "static/chat/missing.js", "static/chat", "chat/index.html\0.js",
])
def test_nothing_but_a_shipped_file_of_a_served_type(path: str) -> None:
    assert PackagedFiles().get(path) is None


def test_shipped_files_with_their_types_and_etags() -> None:
    files = PackagedFiles()
    page = files.get("chat/index.html")
    script = files.get("static/chat/chat.js")
    assert page is not None and script is not None
    assert page.content_type == "text/html; charset=utf-8"
    assert script.content_type == "text/javascript; charset=utf-8"
    for sink in (b"innerHTML", b"outerHTML", b"insertAdjacentHTML", b"document.write", b"eval("):
        assert sink not in script.body, sink  # data is only ever set as text
    assert page.etag != script.etag and page.etag.startswith('"')
    assert files.get("static/chat/chat.js") is script  # read once


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


# Sync, on a served instance: an asyncio test would share this worker with Playwright's
# sync API (tests/webchat is browser tests), whose loop it cannot run beside.
def test_a_current_copy_gets_304_and_a_changed_one_the_file(site: Served) -> None:
    status, headers, _ = _get(site.url + "/static/chat/chat.css")
    assert status == 200
    etag = headers["ETag"]
    status, _, body = _get(site.url + "/static/chat/chat.css", {"If-None-Match": etag})
    assert status == 304 and body == b""
    status, headers, _ = _get(site.url + "/static/chat/chat.css", {"If-None-Match": '"old"'})
    assert status == 200 and headers["Content-Type"] == "text/css; charset=utf-8"
    # Public: no token needed, and a bad one changes nothing.
    status, headers, _ = _get(site.url + "/", {"Authorization": "Bearer nonsense"})
    assert status == 200 and "Content-Security-Policy" in headers
