"""install.sh's checks, and that the README, scripts/test and CI run one test command."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _install(tmp_path: Path, *args: str, python: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    if python:
        env["PYTHON"] = python
    return subprocess.run(["bash", str(ROOT / "install.sh"), *args], cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_install_refuses_an_old_python_with_a_clear_message(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\n[ "$1" = "-V" ] && { echo "Python 3.9.2"; exit 0; }\nexit 1\n')
    old.chmod(0o755)
    result = _install(tmp_path, python=str(old))
    assert result.returncode == 1, result
    assert "needs Python 3.11 or newer" in result.stderr
    assert "Python 3.9.2" in result.stderr
    assert "Traceback" not in result.stderr


def test_install_rejects_an_unknown_option(tmp_path: Path) -> None:
    result = _install(tmp_path, "--bogus")
    assert result.returncode == 2, result
    assert "unknown option --bogus" in result.stderr


def test_the_readme_and_ci_run_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick_start, re.S)
    assert len(commands) == 2, commands  # one to run a server, one to run the tests
    assert commands[0].startswith("./install.sh && ")
    assert "lucky init" in commands[0] and "lucky serve" in commands[0]
    assert commands[1] == "./scripts/test"

    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^exec \./scripts/test\b", ci, re.M), ci
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "./install.sh --dev" in script and "-m pytest -n" in script
    for path in ("install.sh", "scripts/test", ".ci/run"):
        assert os.access(ROOT / path, os.X_OK), f"{path} is not executable"
