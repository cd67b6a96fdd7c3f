"""Running a command against an instance: its config, and its services without HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from lucky_server.config import CONFIG_FILE, Config, load_config
from lucky_server.core import Core, open_core

from .output import fail

T = TypeVar("T")

DataDir = typer.Option(
    Path("./data"),
    "--data-dir",
    "-d",
    envvar="LUCKY_DATA_DIR",
    help="The instance's folder (lucky.toml, secrets, SQLite database, files).",
    show_default=True,
)


def require_config(data_dir: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    if not (data_dir / CONFIG_FILE).exists():
        raise fail(f"no {CONFIG_FILE} in {data_dir}: run `lucky init --data-dir {data_dir}` first")
    return load_config(data_dir, overrides=overrides)


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(fn())  # type: ignore[arg-type]


def with_core(data_dir: Path, fn: Callable[[Core], Awaitable[T]], *, apply_migrations: bool = False) -> T:
    """Load the instance's config, open its services, run `fn`, close them."""
    config = require_config(data_dir)

    async def go() -> T:
        async with open_core(config, apply_migrations=apply_migrations) as core:
            return await fn(core)

    return asyncio.run(go())
