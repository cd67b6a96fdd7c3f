"""`lucky service install`: the systemd template unit it writes, and what it refuses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..cli.process import lucky

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def instance_dir(tmp_path: Path, name: str = "data") -> Path:
    """An instance folder as `lucky init` leaves it, as far as the unit is concerned: its lucky.toml."""
    data_dir = tmp_path / name
    data_dir.mkdir()
    (data_dir / "lucky.toml").write_text("[server]\nshutdown_timeout_s = 25\n")
    return data_dir


def settings(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, the values of a repeated key in order."""
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_install_writes_a_template_unit_for_this_installation(tmp_path: Path) -> None:
    data_dir = instance_dir(tmp_path)
    units = tmp_path / "units"
    units.mkdir()
    result = lucky("service", "install", "--data-dir", data_dir, "--unit-dir", units, "--user", "nobody",
                   "--instance", "edge2")
    assert result.code == 0, result
    assert "systemctl enable --now lucky@edge2" in result.out
    unit = (units / "lucky@.service").read_text()
    assert not re.search(r"@[A-Z_]+@", unit), "a placeholder was left in the unit"
    s = settings(unit)
    lucky_path = Path(sys.executable).parent / "lucky"
    assert s["ExecStart"] == [f"{lucky_path} serve --data-dir {data_dir} --node-id %i $SERVE_ARGS"]
    assert s["User"] == ["nobody"]
    assert s["Restart"] == ["on-failure"]
    assert s["KillSignal"] == ["SIGTERM"]
    assert int(s["TimeoutStopSec"][0]) > 25  # past server.shutdown_timeout_s: a drain is not cut short
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == [str(data_dir)]
    assert s["PrivateTmp"] == ["yes"]
    assert s["WantedBy"] == ["multi-user.target"]


def test_print_shows_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = instance_dir(tmp_path)
    units = tmp_path / "units"
    units.mkdir()
    result = lucky("service", "install", "--data-dir", data_dir, "--unit-dir", units, "--print")
    assert result.code == 0, result
    assert list(units.iterdir()) == []
    assert settings(result.out)["ReadWritePaths"] == [str(data_dir)]
    assert settings(result.out)["User"] == [data_dir.owner()]  # by default, the account that owns the instance


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed; the unit's keys are "
                                                    "still checked above")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    data_dir = instance_dir(tmp_path)
    units = tmp_path / "units"
    units.mkdir()
    assert lucky("service", "install", "--data-dir", data_dir, "--unit-dir", units).code == 0
    checked = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(units / "lucky@node1.service")],
                             capture_output=True, text=True, timeout=60)
    # verify only warns about a directive it cannot parse: any line naming our unit is a problem.
    complaints = [line for line in checked.stderr.splitlines() if "lucky@" in line]
    assert checked.returncode == 0 and not complaints, checked.stderr


def test_an_uninitialized_folder_is_refused(tmp_path: Path) -> None:
    line = lucky("service", "install", "--data-dir", tmp_path / "none", "--print").assert_one_line_error(code=1)
    assert "lucky init" in line


def test_an_unknown_user_is_refused(tmp_path: Path) -> None:
    line = lucky("service", "install", "--data-dir", instance_dir(tmp_path), "--user", "no-such-user-h1",
                 "--print").assert_one_line_error(code=1)
    assert "no-such-user-h1" in line and "useradd" in line


def test_a_data_dir_systemd_cannot_hold_as_is_is_refused(tmp_path: Path) -> None:
    line = lucky("service", "install", "--data-dir", instance_dir(tmp_path, "my data"),
                 "--print").assert_one_line_error(code=1)
    assert "--data-dir" in line


def test_a_missing_unit_dir_is_refused(tmp_path: Path) -> None:
    line = lucky("service", "install", "--data-dir", instance_dir(tmp_path), "--unit-dir", tmp_path / "nope",
                 ).assert_one_line_error(code=1)
    assert "--unit-dir" in line
