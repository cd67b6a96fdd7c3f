"""Names people typed are printed as typed by `lucky group` and `lucky user`, brackets and all."""

from __future__ import annotations

from pathlib import Path

from .process import Served, lucky

# Each would be rich markup (or a markup error, for a closing tag with nothing open).
NAMES = ["[bold]x[/bold]", "[/]", "[red]", "a [link=http://x]b[/link] c"]


def test_group_and_user_names_with_brackets_print_literally(served: Served, data_dir: Path) -> None:
    tokens = []
    for username, display in (("owner1", "[/]"), ("member1", "[bold]Ann[/bold]")):
        status, body = served.call("POST", "/api/v1/auth/register",
                                   {"username": username, "password": "long enough", "display_name": display})
        assert status == 201, body
        tokens.append(body)
    group_ids = []
    for name in NAMES:
        status, body = served.call("POST", "/api/v1/groups", {"name": name, "member_ids": [tokens[1]["user"]["id"]]},
                                   token=tokens[0]["access_token"])
        assert status == 201, body
        group_ids.append(body["id"])
    served.stop()

    listed = lucky("group", "list", "--data-dir", data_dir)
    assert listed.code == 0, listed
    for name in NAMES:
        assert name in listed.out, listed.out

    shown = lucky("group", "show", group_ids[0], "--data-dir", data_dir)
    assert shown.code == 0, shown
    assert NAMES[0] in shown.out and "member1" in shown.out

    users = lucky("user", "list", "--data-dir", data_dir)
    assert users.code == 0, users
    assert "[/]" in users.out and "[bold]Ann[/bold]" in users.out
    assert "disabled" not in users.out and "active" in users.out
