"""Numbered schema migrations, the same DDL for SQLite and PostgreSQL.

A migration is a module `vNNNN_name.py` with a `STATEMENTS` list; its number is its version.
Add one by adding a module with the next number: never edit one that has shipped.
Portable DDL only: BIGINT ids (Snowflakes, never autoincrement), BIGINT epoch milliseconds,
TEXT, INTEGER, BOOLEAN with TRUE/FALSE literals, and ON CONFLICT upserts.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("v"):
            continue
        number, _, name = info.name[1:].partition("_")
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(number), name, tuple(module.STATEMENTS)))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration numbers must run 1, 2, 3...; found v{migration.version:04d} at {expected}")
    return found
