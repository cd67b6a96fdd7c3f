"""`PackagedFiles`, behind `/static/` and the chat page: only shipped files of the served
types, nothing outside the package, and a 304 for a browser whose copy is current."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from lucky_server.web.static import PackagedFiles


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


async def test_a_current_copy_gets_304_and_a_changed_one_the_file(client: TestClient) -> None:
    first = await client.get("/static/chat/chat.css")
    assert first.status == 200
    etag = first.headers["ETag"]
    again = await client.get("/static/chat/chat.css", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    stale = await client.get("/static/chat/chat.css", headers={"If-None-Match": '"old"'})
    assert stale.status == 200 and stale.headers["Content-Type"] == "text/css; charset=utf-8"
    page = await client.get("/")
    assert page.status == 200 and "Content-Security-Policy" in page.headers
    # Public: no token needed, and a bad one changes nothing.
    assert (await client.get("/", headers={"Authorization": "Bearer nonsense"})).status == 200
