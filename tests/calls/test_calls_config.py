"""The [calls] keys: defaults, and values that would make calls impossible stop the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from lucky_server.config import ConfigError, load_config


def test_defaults(tmp_path: Path) -> None:
    calls = load_config(tmp_path, environ={}).calls
    assert (calls.invite_timeout_s, calls.grace_s, calls.max_participants) == (45, 30, 16)


@pytest.mark.parametrize("key, value", [("max_participants", 1), ("invite_timeout_s", 0)])
def test_values_that_make_calls_impossible(tmp_path: Path, key: str, value: int) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={}, overrides={"calls": {key: value}})
    assert f"calls.{key}" in str(caught.value)


def test_environment_overrides(tmp_path: Path) -> None:
    calls = load_config(tmp_path, environ={"LUCKY_CALLS__GRACE_S": "5", "LUCKY_CALLS__MAX_PARTICIPANTS": "4"}).calls
    assert (calls.grace_s, calls.max_participants) == (5, 4)
