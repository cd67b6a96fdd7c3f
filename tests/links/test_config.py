"""The [links] settings: defaults, and bad values refused naming their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lucky_server.config import ConfigError, load_config


def test_defaults(tmp_path: Path) -> None:
    links = load_config(tmp_path, environ={}).links
    assert (links.code_length, links.create_per_min, links.flush_s, links.visits_keep_days, links.cache_size) == (
        7, 30, 5.0, 400, 10_000)


def test_environment_overrides(tmp_path: Path) -> None:
    links = load_config(tmp_path, environ={"LUCKY_LINKS__CODE_LENGTH": "9", "LUCKY_LINKS__FLUSH_S": "0.5"}).links
    assert (links.code_length, links.flush_s) == (9, 0.5)


@pytest.mark.parametrize(("key", "value"), [("code_length", 3), ("code_length", 33), ("flush_s", 0),
                                            ("visits_keep_days", 0), ("create_per_min", -1), ("cache_size", "many")])
def test_bad_values_name_their_key(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={}, overrides={"links": {key: value}})
    assert caught.value.key == f"links.{key}"
