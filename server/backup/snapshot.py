"""Reading tables out of a database snapshot, engine-independently, and checksumming them.

A row is written as one JSON array, values in the table's column order, normalized by the
column's portable kind (a boolean is `true`/`false` whichever engine held it as what), so the
same data gives the same lines on SQLite and PostgreSQL. A table's checksum does not depend on
row order or column order either: it is the sum (mod 2^128) of a hash of each row's values in
column-name order, so a backup's manifest and a restored database can be compared table by
table, on any engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..storage.engine import Database, Snapshot, TableShape
from . import BackupError

# What a backup does not hold, and why (written into each manifest).
LEFT_OUT = {
    "message_search": "derived (and different per engine): rebuilt from messages on restore",
    "job_leases": "transient: which node runs a job right now",
    "schema_version": "recreated by the migrations up to the archive's schema_version",
    "uploads": "transient: chunked uploads in progress (a client starts an unknown upload again)",
    "upload_chunks": "transient: the chunks of uploads in progress",
}
BATCH = 1000
_MOD = 1 << 128


def backed_up(shapes: Iterable[TableShape]) -> list[TableShape]:
    """The tables a backup holds, parents before the tables whose foreign keys point to them."""
    tables = {s.name: s for s in shapes if s.name not in LEFT_OUT}
    ordered: list[TableShape] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name not in tables:
            return
        if name in path:
            raise BackupError(f"foreign keys form a cycle through {name}")
        for parent in tables[name].references:
            if parent != name:
                place(parent, (*path, name))
        placed.add(name)
        ordered.append(tables[name])

    for name in sorted(tables):
        place(name, ())
    return ordered


def normalizer(shape: TableShape) -> Callable[[Sequence[Any]], list[Any]]:
    """A function from a row as the engine returns it to its portable values."""
    booleans = [i for i, c in enumerate(shape.columns) if c.kind == "boolean"]
    if not booleans:
        return list

    def normalize(row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for i in booleans:
            if values[i] is not None:
                values[i] = bool(values[i])
        return values

    return normalize


class TableDigest:
    """The order-independent checksum of a table's rows (see the module's docstring)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self._order = sorted(range(len(columns)), key=lambda i: columns[i])
        self._names = canonical_names([columns[i] for i in self._order])
        self._sum = 0
        self.rows = 0

    def add(self, values: Sequence[Any]) -> None:
        line = orjson.dumps([values[i] for i in self._order])
        self._sum = (self._sum + int.from_bytes(hashlib.blake2b(line, digest_size=16).digest(), "big")) % _MOD
        self.rows += 1

    def hexdigest(self) -> str:
        return hashlib.sha256(self._names + self._sum.to_bytes(16, "big")).hexdigest()


def canonical_names(names: Sequence[str]) -> bytes:
    return orjson.dumps(list(names))


async def normalized_rows(snapshot: Snapshot, shape: TableShape, batch: int = BATCH) -> AsyncIterator[list[list[Any]]]:
    """The table's rows in batches, each row a list of portable values."""
    normalize = normalizer(shape)
    async for rows in snapshot.rows(shape, batch):
        yield [normalize(row) for row in rows]


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str


async def table_checksums(db: Database, names: Iterable[str] | None = None) -> dict[str, TableSum]:
    """Row count and checksum of each table a backup holds (or of the tables named), read from
    one snapshot: what a restore compares with the archive's manifest."""
    wanted = set(names) if names is not None else None
    out: dict[str, TableSum] = {}
    async with db.snapshot() as snapshot:
        for shape in backed_up(await snapshot.tables()):
            if wanted is not None and shape.name not in wanted:
                continue
            digest = TableDigest([c.name for c in shape.columns])
            async for rows in normalized_rows(snapshot, shape):
                for row in rows:
                    digest.add(row)
            out[shape.name] = TableSum(digest.rows, digest.hexdigest())
    return out
