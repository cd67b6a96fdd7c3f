"""The documentation that users rely on stays in step with the code."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from lucky_server.config import Config

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    hints = typing.get_type_hints(Config)
    missing = []
    for section in dataclasses.fields(Config):
        if section.name == "data_dir":
            continue
        if f"## [{section.name}]" not in text:
            missing.append(f"[{section.name}]")
            continue
        block = text.split(f"## [{section.name}]", 1)[1].split("\n## ", 1)[0]
        for key in dataclasses.fields(hints[section.name]):
            if f"| `{key.name}` |" not in block:
                missing.append(f"{section.name}.{key.name}")
    assert not missing, f"undocumented config keys in docs/configuration.md: {missing}"
