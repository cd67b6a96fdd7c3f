"""Fixtures for the CLI tests: an initialized instance, and that instance being served."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .process import Served, lucky

ADMIN_PASSWORD = "admin secret 1"


@pytest.fixture(scope="session")
def initialized_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `lucky init` per test worker (an RSA key and a scrypt hash take a moment)."""
    path = tmp_path_factory.mktemp("template") / "data"
    result = lucky("init", "--data-dir", path, "--non-interactive", "--admin-username", "root",
                   "--admin-password", ADMIN_PASSWORD)
    assert result.code == 0, result
    return path


@pytest.fixture
def data_dir(initialized_template: Path, tmp_path: Path) -> Path:
    """A private copy of an instance on the embedded default (SQLite, local files), with
    the admin `root`. Copied while no process has it open; modes are kept (copy2)."""
    path = tmp_path / "data"
    shutil.copytree(initialized_template, path)
    return path


@pytest.fixture
def served(data_dir: Path) -> Iterator[Served]:
    """`data_dir` served on a free port; killed at the end if a test left it running."""
    server = Served("--data-dir", data_dir)
    try:
        server.wait_listening()
        yield server
    finally:
        server.kill()
