"""An instance that may run several processes: PostgreSQL (a fresh schema) and Redis (a key
prefix of its own, passed as LUCKY_REDIS__PREFIX to every command)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..cli.process import clean_env, lucky
from ..services import REDIS_URL, drop_schema, postgres_url_with_fresh_schema, redis_prefix


@dataclass(frozen=True)
class Site:
    data_dir: Path
    env: dict[str, str]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url, schema = postgres_url_with_fresh_schema()
    env = clean_env(LUCKY_REDIS__PREFIX=redis_prefix())
    data_dir = tmp_path / "data"
    try:
        result = lucky("init", "--data-dir", data_dir, "--non-interactive", "--database", url, "--redis", REDIS_URL,
                       "--admin-username", "root", "--admin-password", "root secret 1", env=env)
        assert result.code == 0, result
        yield Site(data_dir, env)
    finally:
        drop_schema(schema)
