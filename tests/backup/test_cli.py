"""The real CLI end to end: an instance being served is backed up, the archive listed,
restored into a new data dir (SQLite or PostgreSQL), and the restored instance served."""

from __future__ import annotations

import stat
from pathlib import Path

from ..cli.conftest import ADMIN_PASSWORD, data_dir, initialized_template, served  # noqa: F401 - fixtures
from ..cli.process import Served, lucky


def _register(server: Served, username: str) -> dict[str, object]:
    status, body = server.call("POST", "/api/v1/auth/register", {"username": username, "password": "pass word 1"})
    assert status == 201, body
    return dict(body)


def test_backup_now_list_restore_and_serve(served: Served, data_dir: Path, target_url: str | None,
                                           tmp_path: Path) -> None:
    alice, bob = _register(served, "alice"), _register(served, "bob")
    low, high = sorted((int(alice["user"]["id"]), int(bob["user"]["id"])))  # type: ignore[index]
    cid = f"p:{low}:{high}"
    sent = []
    for i in range(3):
        status, message = served.call("POST", f"/api/v1/conversations/{cid}/messages",
                                      {"client_msg_id": f"c{i}", "kind": "text", "body": {"text": f"note {i}"}},
                                      token=str(alice["access_token"]))
        assert status == 201, message
        sent.append((message["id"], message["seq"]))

    result = lucky("backup", "now", "--data-dir", data_dir)  # while the server runs
    assert result.code == 0, result
    archive = Path(result.out.splitlines()[-1])
    assert archive.parent == data_dir.resolve() / "backups" and archive.is_file()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    listed = lucky("backup", "list", "--data-dir", data_dir)
    assert listed.code == 0, listed
    [row] = [line for line in listed.out.splitlines() if archive.name in line]
    assert " 3 " in row and " no " in row, listed.out  # 3 users (root, alice, bob), not encrypted

    new = tmp_path / "new"
    database = ["--database", target_url] if target_url else []
    restored = lucky("backup", "restore", archive, "--data-dir", new, *database)
    assert restored.code == 0, restored
    assert stat.S_IMODE((new / "lucky.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE((new / "secrets").stat().st_mode) == 0o700

    again = Served("--data-dir", new)
    try:
        again.wait_listening()
        status, body = again.login("alice", "pass word 1")
        assert status == 200, body
        status, history = again.call("GET", f"/api/v1/conversations/{cid}/messages", token=body["access_token"])
        assert status == 200, history
        assert [(m["id"], m["seq"], m["body"]["text"]) for m in history["items"]] == [
            (mid, seq, f"note {i}") for i, (mid, seq) in enumerate(sent)]
        assert again.login("root", ADMIN_PASSWORD)[0] == 200
        assert again.login("alice", "wrong password")[0] == 401
    finally:
        again.kill()
