"""The query plans of the read paths (issue 14): every statement a service call runs, explained.

`recording(db)` captures the SQL that `fetch_one`/`fetch_all` run while a block runs (history,
`sync`, the conversation list called on the real `ChatService`), so the plans shown are those of
exactly the statements the server runs, not copies of them. `explain` asks the database:
`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN (ANALYZE, COSTS OFF)` on PostgreSQL. `scans` picks
out the lines that read a whole table (or a whole index) of the tables that grow.

On a small database PostgreSQL prefers a sequential scan whatever the indexes (a few pages
are cheaper read whole); `explain(..., force_index=True)` turns `enable_seqscan` off for the
statement, so a scan left in the plan means that no index can serve it. That is what the tests
check; the benchmark explains the seeded database as the planner sees it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lucky_server.storage import Database, Tx

# The tables that grow with use, and the aliases the stores give them.
GROWING = {"messages", "conversation_members", "conversations", "users", "m", "c"}
_SQLITE_SCAN = re.compile(r"^SCAN (\w+)")
_PG_SCAN = re.compile(r"Seq Scan on (\w+)")
_PG_INDEX_SCAN = re.compile(r"(?:Index Scan|Index Only Scan|Index Scan Backward|Index Only Scan Backward) using (\w+)"
                            r"|Bitmap Index Scan on (\w+)")


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Any, ...]


@contextlib.contextmanager
def recording(db: Database) -> Iterator[list[Statement]]:
    """Record every distinct statement read through `db` in the block (first parameters kept)."""
    seen: list[Statement] = []
    known: set[str] = set()
    fetch_one, fetch_all = db.fetch_one, db.fetch_all

    def note(sql: str, params: Any) -> None:
        if sql not in known:
            known.add(sql)
            seen.append(Statement(sql, tuple(params)))

    async def one(sql: str, params: Any = ()) -> Any:
        note(sql, params)
        return await fetch_one(sql, params)

    async def every(sql: str, params: Any = ()) -> Any:
        note(sql, params)
        return await fetch_all(sql, params)

    db.fetch_one, db.fetch_all = one, every  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        db.fetch_one, db.fetch_all = fetch_one, fetch_all  # type: ignore[method-assign]


async def explain(db: Database, statement: Statement, *, force_index: bool = False) -> list[str]:
    """The plan of one statement, a line per node."""
    if db.dialect == "sqlite":
        rows = await db.fetch_all("EXPLAIN QUERY PLAN " + statement.sql, statement.params)
        return [str(r["detail"]) for r in rows]

    async def run(tx: Tx) -> list[str]:
        if force_index:
            await tx.execute("SET LOCAL enable_seqscan = off")
        rows = await tx.fetch_all("EXPLAIN (ANALYZE, COSTS OFF) " + statement.sql, statement.params)
        return [str(r["QUERY PLAN"]) for r in rows]

    # In a transaction of its own so that SET LOCAL holds for this statement and nothing else.
    return await db.transaction("explain", run)


async def leading_columns(db: Database) -> dict[str, str]:
    """PostgreSQL: each index of the current schema and its first column (SQLite: {})."""
    if db.dialect != "postgresql":
        return {}
    rows = await db.fetch_all(
        "SELECT i.relname AS index_name, a.attname AS column_name FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
        "WHERE i.relnamespace = current_schema()::regnamespace")
    return {str(r["index_name"]): str(r["column_name"]) for r in rows}


def scans(dialect: str, plan: Sequence[str], leading: dict[str, str] | None = None) -> list[str]:
    """The lines of a plan that read a growing table whole: SQLite `SCAN t` (with or without
    an index); PostgreSQL `Seq Scan on t`, and an index scan whose condition does not hold the
    index's first column (`leading`, from `leading_columns`), which PostgreSQL runs by reading
    the whole index (a condition on a later column only filters it)."""
    found = []
    for i, raw in enumerate(plan):
        line = raw.strip().removeprefix("->").strip()
        if dialect == "sqlite":
            match = _SQLITE_SCAN.search(line)
            if match and match.group(1) in GROWING:
                found.append(line)
            continue
        match = _PG_SCAN.search(line)
        if match and match.group(1) in GROWING:
            found.append(line)
            continue
        index = _PG_INDEX_SCAN.search(line)
        name = index and (index.group(1) or index.group(2))
        if not name or leading is None or name not in leading:
            continue
        depth = len(raw) - len(raw.lstrip())
        cond = ""
        for below in plan[i + 1:]:
            if len(below) - len(below.lstrip()) <= depth or below.strip().startswith("->"):
                break
            if below.strip().startswith("Index Cond:"):
                cond = below
        if not re.search(rf"\(\(?{re.escape(leading[name])} ", cond):
            found.append(f"{line} (whole index: {cond.strip() or 'no condition'})")
    return found
