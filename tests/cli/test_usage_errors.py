"""Wrong usage: one line on stderr, a non-zero exit code scripts can rely on, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from .process import clean_env, lucky


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["user", "frobnicate"], "No such command 'frobnicate'"),
        (["user", "add"], "Missing argument"),
        (["user", "disable"], "Missing argument"),
        (["init", "--no-such-flag"], "No such option"),
        (["user", "list", "--limit", "0"], "--limit"),
        (["user", "list", "--limit", "many"], "--limit"),
        (["serve", "--port", "eighty"], "--port"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    result = lucky(*args, "--data-dir", tmp_path)
    line = result.assert_one_line_error(code=2)
    assert says in line
    assert "--help" in line  # and where to look


def test_no_command_shows_the_help(tmp_path: Path) -> None:
    for args in ([], ["user"]):
        result = lucky(*args)
        assert result.code != 0
        assert "Usage: lucky" in result.out
        assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["doctor"],
        ["serve"],
        ["user", "list"],
        ["user", "add", "alice", "--password", "long enough"],
        ["user", "disable", "alice"],
    ],
)
def test_an_uninitialized_data_dir_says_to_run_init(tmp_path: Path, args: list[str]) -> None:
    empty = tmp_path / "empty"
    result = lucky(*args, "--data-dir", empty)
    line = result.assert_one_line_error(code=1)
    assert "lucky init" in line
    assert not empty.exists()  # nothing was created on the way


def test_missing_secrets_are_named(data_dir: Path) -> None:
    (data_dir / "secrets" / "jwt.key").unlink()
    result = lucky("user", "list", "--data-dir", data_dir)
    line = result.assert_one_line_error(code=1)
    assert "jwt.key" in line and "lucky init" in line


def test_a_bad_value_in_the_environment_stops_serve_naming_the_key(data_dir: Path) -> None:
    result = lucky("serve", "--port", "0", "--data-dir", data_dir,
                   env=clean_env(LUCKY_CHAT__SEND_RATE_PER_S="abc"), timeout=30)
    line = result.assert_one_line_error(code=1)
    assert "chat.send_rate_per_s" in line
    assert "listening" not in result.err


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("LUCKY_CHAT__NO_SUCH_KEY", "chat.no_such_key"),
        ("LUCKY_NOSECTION__KEY", "nosection"),
        ("LUCKY_AUTH__REGISTRATION_OPEN", "auth.registration_open"),
    ],
)
def test_unknown_or_bad_keys_in_the_environment_are_named(data_dir: Path, variable: str, key: str) -> None:
    result = lucky("migrate", "--data-dir", data_dir, env=clean_env(**{variable: "maybe"}))
    assert key in result.assert_one_line_error(code=1)


def test_a_broken_lucky_toml_is_named(data_dir: Path) -> None:
    (data_dir / "lucky.toml").write_text("[server\nport = 1\n")
    result = lucky("migrate", "--data-dir", data_dir)
    assert "lucky.toml" in result.assert_one_line_error(code=1)
