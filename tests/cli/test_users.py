"""`lucky user add|list|disable|enable|passwd|promote`, checked through a served instance.

The CLI and the server are separate processes on one SQLite database, as on a real
machine: what the CLI changes must hold for the running server at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ADMIN_PASSWORD
from .process import Served, lucky


def _list_row(data_dir: Path, username: str) -> str:
    result = lucky("user", "list", "--data-dir", data_dir)
    assert result.code == 0, result
    rows = [line for line in result.out.splitlines() if re.search(rf"│ {re.escape(username)} +│", line)]
    assert len(rows) == 1, result.out
    return rows[0]


def test_add_then_list(data_dir: Path) -> None:
    added = lucky("user", "add", "alice", "--password", "alice secret", "--display-name", "Alice [A]",
                  "--data-dir", data_dir)
    assert added.code == 0, added
    found = re.search(r"created user 'alice' \(id (\d+)\)", added.out)
    assert found, added
    assert "password" not in added.out  # it was given, so it is not echoed

    row = _list_row(data_dir, "alice")
    assert found.group(1) in row  # the whole id, never cut short
    assert "Alice [A]" in row  # user text is shown as typed, not read as markup
    assert "active" in row
    assert "admin" not in row
    assert "admin" in _list_row(data_dir, "root")


def test_add_generates_a_password_and_prints_it_once(served: Served, data_dir: Path) -> None:
    added = lucky("user", "add", "bob", "--data-dir", data_dir)
    assert added.code == 0, added
    printed = re.findall(r"password \(shown once\): (\S+)", added.out)
    assert len(printed) == 1, added
    status, body = served.login("bob", printed[0])
    assert status == 200, body


def test_add_admin_and_list_query(data_dir: Path) -> None:
    assert lucky("user", "add", "carol", "--admin", "--password", "carol secret", "--data-dir", data_dir).code == 0
    assert lucky("user", "add", "dave", "--password", "dave secret 1", "--data-dir", data_dir).code == 0
    assert "admin" in _list_row(data_dir, "carol")
    result = lucky("user", "list", "--query", "ca", "--data-dir", data_dir)
    assert result.code == 0, result
    assert "carol" in result.out and "dave" not in result.out and "1 user(s)" in result.out


def test_disable_signs_out_and_blocks_login_until_enabled(served: Served, data_dir: Path) -> None:
    status, body = served.call("POST", "/api/v1/auth/register", {"username": "erin", "password": "erin secret"})
    assert status == 201, body
    token = body["access_token"]
    assert served.call("GET", "/api/v1/me", token=token)[0] == 200

    disabled = lucky("user", "disable", "erin", "--data-dir", data_dir)
    assert disabled.code == 0, disabled
    assert "disabled" in _list_row(data_dir, "erin")
    status, body = served.login("erin", "erin secret")
    assert status == 403, body
    assert body["error"]["code"] == "forbidden"
    assert served.call("GET", "/api/v1/me", token=token)[0] == 401  # its session ended

    enabled = lucky("user", "enable", "erin", "--data-dir", data_dir)
    assert enabled.code == 0, enabled
    assert "active" in _list_row(data_dir, "erin")
    status, body = served.login("erin", "erin secret")
    assert status == 200, body


def test_passwd_changes_the_password_and_signs_out(served: Served, data_dir: Path) -> None:
    status, body = served.login("root", ADMIN_PASSWORD)
    assert status == 200, body
    token = body["access_token"]

    changed = lucky("user", "passwd", "root", "--password", "brand new secret", "--data-dir", data_dir)
    assert changed.code == 0, changed
    assert "brand new secret" not in changed.out

    assert served.login("root", ADMIN_PASSWORD)[0] == 401
    assert served.login("root", "brand new secret")[0] == 200
    assert served.call("GET", "/api/v1/me", token=token)[0] == 401


def test_passwd_rejects_a_short_password(data_dir: Path) -> None:
    result = lucky("user", "passwd", "root", "--password", "short", "--data-dir", data_dir)
    assert "password" in result.assert_one_line_error(code=1)


def test_promote_and_demote(data_dir: Path) -> None:
    assert lucky("user", "add", "frank", "--password", "frank secret", "--data-dir", data_dir).code == 0
    promoted = lucky("user", "promote", "frank", "--data-dir", data_dir)
    assert promoted.code == 0, promoted
    assert "now an admin" in promoted.out
    assert "admin" in _list_row(data_dir, "frank")

    demoted = lucky("user", "promote", "frank", "--demote", "--data-dir", data_dir)
    assert demoted.code == 0, demoted
    assert "admin" not in _list_row(data_dir, "frank")


@pytest.mark.parametrize(
    "args",
    [
        ["disable", "nobody"],
        ["enable", "nobody"],
        ["passwd", "nobody", "--password", "long enough"],
        ["promote", "nobody"],
    ],
)
def test_an_unknown_user_fails_in_one_line(data_dir: Path, args: list[str]) -> None:
    result = lucky("user", *args, "--data-dir", data_dir)
    assert "nobody" in result.assert_one_line_error(code=1)


def test_adding_a_taken_or_bad_username_fails_in_one_line(data_dir: Path) -> None:
    taken = lucky("user", "add", "ROOT", "--password", "long enough", "--data-dir", data_dir)
    assert "taken" in taken.assert_one_line_error(code=1)
    bad = lucky("user", "add", "a b", "--password", "long enough", "--data-dir", data_dir)
    assert "username" in bad.assert_one_line_error(code=1)
    short = lucky("user", "add", "gina", "--password", "short", "--data-dir", data_dir)
    assert "password" in short.assert_one_line_error(code=1)
