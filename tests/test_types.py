"""mypy sees the packages under their import names, so lucky_cli's calls into the server are checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_checks_lucky_cli_calls_into_lucky_server(tmp_path: Path) -> None:
    # Were `lucky_server` unresolved, ignore_missing_imports would make it Any and this
    # wrong assignment would pass unnoticed.
    probe = tmp_path / "probe.py"
    probe.write_text("from lucky_server.ids import parse_id\n\nwrong: str = parse_id('1')\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), str(probe)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "probe.py:3: error: Incompatible types in assignment" in result.stdout, result.stdout + result.stderr


def test_the_packages_pass_mypy_strict(tmp_path: Path) -> None:
    # STYLE.md: mypy in strict mode on server/, console/ and lucky_cli/ (pyproject's [tool.mypy]).
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
