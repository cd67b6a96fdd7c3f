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
    # Where the databases truly differ (full-text search), a module may add statements for
    # one dialect in STATEMENTS_BY_DIALECT; everything else stays portable.
    by_dialect: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def statements_for(self, dialect: str) -> tuple[str, ...]:
        return self.statements + dict(self.by_dialect).get(dialect, ())


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("v"):
            continue
        number, _, name = info.name[1:].partition("_")
        module = importlib.import_module(f"{__name__}.{info.name}")
        by_dialect = getattr(module, "STATEMENTS_BY_DIALECT", {})
        found.append(Migration(int(number), name, tuple(module.STATEMENTS),
                               tuple((d, tuple(s)) for d, s in by_dialect.items())))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration numbers must run 1, 2, 3...; found v{migration.version:04d} at {expected}")
    return found
