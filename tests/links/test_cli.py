"""`lucky link add|list|rm|stats` through the real script, on an initialized instance (admin `root`)."""

from __future__ import annotations

import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from ..cli.process import Served, lucky


def _row(out: str, first: str) -> str:
    rows = [line for line in out.splitlines() if line.strip("│ ").startswith(first + " ")]
    assert len(rows) == 1, out
    return rows[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _status_and_location(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def test_add_list_and_rm_a_link_owned_by_the_first_admin(data_dir: Path) -> None:
    added = lucky("link", "add", "https://example.com/launch", "--code", "launch", "--data-dir", data_dir)
    assert added.code == 0, added
    assert added.out.splitlines()[0] == "✓ created: launch -> https://example.com/launch"
    assert added.out.strip().splitlines()[-1].endswith("/s/launch")
    again = lucky("link", "add", "https://example.com/launch", "--code", "launch", "--data-dir", data_dir)
    assert again.code == 0 and "already there: launch" in again.out, again
    random = lucky("link", "add", "https://example.com/other", "--expires", "2999-01-31T12:00:00Z", "-d", data_dir)
    assert random.code == 0, random
    code = random.out.strip().splitlines()[-1].rsplit("/s/", 1)[1]
    assert len(code) == 7

    listed = lucky("link", "list", "--data-dir", data_dir)
    assert listed.code == 0, listed
    assert "2 link(s)" in listed.out
    row = _row(listed.out, "launch")
    assert "https://example.com/launch" in row and " root " in row and " 0 " in row
    assert "2999-01-31 12:00" in _row(listed.out, code)
    newest = lucky("link", "list", "--owner", "root", "--limit", "1", "-d", data_dir)
    assert "1 link(s)" in newest.out and code in newest.out and "launch" not in newest.out, newest

    removed = lucky("link", "rm", "launch", "--data-dir", data_dir)
    assert removed.code == 0 and "deleted launch" in removed.out, removed
    assert "launch" not in lucky("link", "list", "--data-dir", data_dir).out
    line = lucky("link", "rm", "launch", "--data-dir", data_dir).assert_one_line_error(code=1)
    assert "No link has that code" in line
    with sqlite3.connect(data_dir / "lucky.db") as db:  # an operator's changes are audited
        audited = db.execute("SELECT actor_id, action, target FROM audit_log WHERE action LIKE 'link.%' "
                             "ORDER BY id").fetchall()
    assert audited == [(None, "link.create", "launch"), (None, "link.create", code), (None, "link.delete", "launch")]


def test_bad_input_is_one_line_and_exit_1_and_creates_nothing(data_dir: Path) -> None:
    cases = [
        (["javascript:alert(1)"], "url"),
        (["https://user:pw@example.com/"], "user name or password"),
        (["https://example.com/", "--code", "no"], "code"),
        (["https://example.com/", "--code", "admin"], "reserved"),
        (["https://example.com/", "--expires", "next tuesday"], "ISO 8601"),
        (["https://example.com/", "--expires", "2001-01-01"], "expires_at"),
        (["https://example.com/", "--owner", "nobody"], "user"),
    ]
    for args, said in cases:
        line = lucky("link", "add", *args, "--data-dir", data_dir).assert_one_line_error(code=1)
        assert said in line, (args, line)
    assert "0 link(s)" in lucky("link", "list", "--data-dir", data_dir).out
    assert "No link" in lucky("link", "stats", "nothing", "-d", data_dir).assert_one_line_error(code=1)
    assert "user" in lucky("link", "list", "--owner", "nobody", "-d", data_dir).assert_one_line_error(code=1)


def test_a_served_redirect_is_counted_and_written_when_the_server_stops(data_dir: Path) -> None:
    assert lucky("link", "add", "https://example.com/served", "--code", "served", "-d", data_dir).code == 0
    server = Served("--data-dir", data_dir, env=None)
    try:
        url = server.wait_listening()
        for _ in range(3):
            assert _status_and_location(f"{url}/s/served") == (302, "https://example.com/served")
        assert _status_and_location(f"{url}/s/unknown")[0] == 404
        code, _ = server.stop()
        assert code == 0, server.text
    finally:
        server.kill()
    stats = lucky("link", "stats", "served", "--days", "2", "-d", data_dir)
    assert stats.code == 0, stats
    assert "served: 3 visit(s) in all" in stats.out
    assert sum(int(line.strip("│ ").split()[-1]) for line in stats.out.splitlines()
               if line.strip("│ ")[:2] == "20") == 3
