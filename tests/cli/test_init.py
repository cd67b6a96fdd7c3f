"""`lucky init`: the contract of DESIGN.md ("Contracts for automation")."""

from __future__ import annotations

import asyncio
import hashlib
import re
import stat
from pathlib import Path

import pytest

from lucky_server.config import load_config
from lucky_server.core import open_core

from ..services import drop_schema, postgres_url_with_fresh_schema
from .process import Served, lucky


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file under `root`: its content hash, mtime (ns) and mode."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            info = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(root))] = (digest, info.st_mtime_ns, stat.S_IMODE(info.st_mode))
    return found


def _user_count(data_dir: Path) -> int:
    async def count() -> int:
        async with open_core(load_config(data_dir, environ={})) as core:
            return await core.users.count()

    return asyncio.run(count())


def test_non_interactive_init_creates_the_instance(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = lucky("init", "--data-dir", data_dir, "--non-interactive")
    assert result.code == 0, result
    assert "Traceback" not in result.err

    assert (data_dir / "lucky.toml").is_file()
    secrets = sorted((data_dir / "secrets").iterdir())
    assert [p.name for p in secrets] == ["jwt.key", "pii.keys", "rsa_private.pem", "url_signing.key"]
    for path in secrets:
        assert _mode(path) == 0o600, path
    assert _mode(data_dir / "secrets") == 0o700
    assert _mode(data_dir / "lucky.toml") == 0o600  # it may hold database credentials
    assert (data_dir / "lucky.db").is_file()

    # Without --admin-password a password is generated and printed once, and it works.
    printed = re.findall(r"admin password \(shown once, store it now\): (\S+)", result.out)
    assert len(printed) == 1, result
    password = printed[0]
    assert len(password) >= 12
    for path in secrets:  # the secrets themselves are never printed
        assert path.read_text().strip()[:40] not in result.out + result.err

    server = Served("--data-dir", data_dir)
    try:
        server.wait_listening()
        status, body = server.login("admin", password)
        assert status == 200, body
        assert body["user"]["username"] == "admin"
    finally:
        server.kill()


def test_init_without_a_terminal_does_not_prompt(tmp_path: Path) -> None:
    # No --non-interactive, but stdin is not a terminal (CI, scripts): generate, never hang.
    result = lucky("init", "--data-dir", tmp_path / "data", "--admin-username", "boss", timeout=30)
    assert result.code == 0, result
    assert "created admin 'boss'" in result.out
    assert "shown once" in result.out


def test_init_twice_changes_nothing_and_says_so(data_dir: Path) -> None:
    before = _snapshot(data_dir)
    users_before = _user_count(data_dir)
    assert users_before == 1

    again = lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-username", "other",
                  "--admin-password", "another password")
    assert again.code == 0, again
    assert "already initialized" in again.out
    assert "nothing changed" in again.out
    assert "password" not in again.out

    assert _snapshot(data_dir) == before
    assert _user_count(data_dir) == users_before


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--admin-password", "short"], "--admin-password"),
        (["--admin-username", "No Spaces Allowed", "--admin-password", "long enough"], "username"),
        (["--database", "mysql://localhost/lucky"], "database.url"),
        (["--storage", "ftp://files"], "storage.url"),
        (["--redis", "http://localhost"], "redis.url"),
        (["--port", "70000"], "server.port"),
    ],
)
def test_init_with_a_bad_value_fails_in_one_line_and_writes_nothing(tmp_path: Path, flags: list[str],
                                                                   names: str) -> None:
    data_dir = tmp_path / "data"
    result = lucky("init", "--data-dir", data_dir, "--non-interactive", *flags)
    line = result.assert_one_line_error()
    assert names in line
    assert not (data_dir / "lucky.toml").exists()
    assert not (data_dir / "secrets").exists()


def test_init_on_postgresql(tmp_path: Path) -> None:
    url, schema = postgres_url_with_fresh_schema()
    data_dir = tmp_path / "data"
    try:
        result = lucky("init", "--data-dir", data_dir, "--non-interactive", "--database", url,
                       "--admin-username", "pgadmin", "--admin-password", "pg admin secret")
        assert result.code == 0, result
        assert "created admin 'pgadmin'" in result.out
        assert url in (data_dir / "lucky.toml").read_text()
        assert not (data_dir / "lucky.db").exists()

        listed = lucky("user", "list", "--data-dir", data_dir)
        assert listed.code == 0, listed
        assert "pgadmin" in listed.out

        migrated = lucky("migrate", "--data-dir", data_dir)
        assert migrated.code == 0, migrated
        assert "nothing to apply" in migrated.out

        # A second node's init against the same database: its own secrets and config,
        # and the admin that is already there is left alone.
        node2 = tmp_path / "node2"
        joined = lucky("init", "--data-dir", node2, "--non-interactive", "--database", url,
                       "--admin-username", "pgadmin", "--admin-password", "a different one")
        assert joined.code == 0, joined
        assert "already exists" in joined.out
        assert "0 migration(s) applied" in joined.out
    finally:
        drop_schema(schema)
