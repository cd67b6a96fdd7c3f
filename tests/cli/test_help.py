"""`lucky --version` and `--help`: every command documents itself with an example."""

from __future__ import annotations

import pytest
import typer

import lucky_server
from lucky_cli.main import app

from .process import lucky

# The commands of DESIGN.md's contract; any other command the app defines is checked too.
CONTRACT = {
    "init",
    "serve",
    "migrate",
    "doctor",
    "user",
    "user add",
    "user list",
    "user disable",
    "user enable",
    "user passwd",
    "user promote",
}


def _command_paths() -> list[str]:
    """Every command and subcommand the app defines, as `group sub` strings ("" is `lucky`)."""
    found = [""]

    def walk(command: object, prefix: str) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            path = f"{prefix} {name}".strip()
            found.append(path)
            walk(sub, path)

    walk(typer.main.get_command(app), "")
    return found


COMMANDS = _command_paths()


def test_the_contract_commands_exist() -> None:
    assert CONTRACT <= set(COMMANDS)


def test_version() -> None:
    result = lucky("--version")
    assert result.code == 0, result
    assert result.out.strip() == f"lucky {lucky_server.__version__}"
    assert result.err == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    result = lucky(*command.split(), "--help")
    assert result.code == 0, result
    assert f"Usage: lucky {command}".strip() in result.out, result
    assert "Example: lucky" in result.out, result
    assert result.err == "", result
