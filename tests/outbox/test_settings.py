"""Bad [outbox] and [push] settings stop the start naming the key; the outbox CLI on an
instance that does not exist fails with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..cli.process import lucky
from ..test_config import error_for, write_toml


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[push]\nwebhook_url = "gateway.example/push"\n', "push.webhook_url"),
        ('[push]\nwebhook_url = "ftp://gateway.example/push"\n', "push.webhook_url"),
        ("[push]\nmax_attempts = 0\n", "push.max_attempts"),
        ("[push]\nmax_in_flight = 0\n", "push.max_in_flight"),
        ("[push]\ntimeout_s = 0\n", "push.timeout_s"),
        ("[outbox]\nmax_attempts = 0\n", "outbox.max_attempts"),
        ("[outbox]\ngrace_s = -1\n", "outbox.grace_s"),
    ],
)
def test_a_bad_outbox_or_push_setting_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    write_toml(tmp_path, text)
    assert error_for(tmp_path).key == key


@pytest.mark.parametrize("args", [("status",), ("status", "--json"), ("retry",), ("retry", "--failed")])
def test_the_outbox_commands_on_a_folder_without_an_instance_fail_in_one_line(tmp_path: Path,
                                                                             args: tuple[str, ...]) -> None:
    result = lucky("outbox", *args, "--data-dir", tmp_path / "nothing")
    assert "lucky init" in result.assert_one_line_error(code=1)
