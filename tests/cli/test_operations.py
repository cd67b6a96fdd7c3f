"""`lucky migrate` and `lucky doctor`."""

from __future__ import annotations

from pathlib import Path

from ..services import REDIS_URL, free_port, require
from .process import clean_env, lucky


def _row(out: str, backend: str) -> str:
    rows = [line for line in out.splitlines() if line.strip("│ ").startswith(backend + " ")]
    assert len(rows) == 1, out
    return rows[0]


def test_migrate_on_an_initialized_instance_has_nothing_to_apply(data_dir: Path) -> None:
    result = lucky("migrate", "--data-dir", data_dir)
    assert result.code == 0, result
    assert "nothing to apply" in result.out


def test_doctor_prints_a_table_and_passes(data_dir: Path) -> None:
    result = lucky("doctor", "--data-dir", data_dir)
    assert result.code == 0, result
    for backend in ("database", "redis", "storage"):
        assert " ok " in _row(result.out, backend), result.out
    assert "embedded" in _row(result.out, "redis")
    assert "up to date" in _row(result.out, "database")


def test_doctor_fails_with_a_fail_row_when_redis_does_not_answer(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    closed = f"redis://127.0.0.1:{free_port()}/0"
    init = lucky("init", "--data-dir", data_dir, "--non-interactive", "--redis", closed)
    assert init.code == 0, init

    result = lucky("doctor", "--data-dir", data_dir)
    assert result.code == 1, result
    assert "FAIL" in _row(result.out, "redis")
    assert " ok " in _row(result.out, "database")
    line = result.assert_one_line_error()
    assert "redis" in line


def test_doctor_checks_the_redis_given_by_the_environment(data_dir: Path) -> None:
    require("redis", REDIS_URL, 6379)
    result = lucky("doctor", "--data-dir", data_dir, env=clean_env(LUCKY_REDIS__URL=REDIS_URL))
    assert result.code == 0, result
    row = _row(result.out, "redis")
    assert " ok " in row and "embedded" not in row, result.out
