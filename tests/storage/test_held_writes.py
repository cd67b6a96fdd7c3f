"""Writes a transaction holds (executemany, and BEGIN on PostgreSQL) until its next statement
whose result is read, or its COMMIT: on both databases they behave as if sent at once.

On PostgreSQL the held statements go in one pipeline with that next statement; on SQLite in
one call on the connection's thread. Either way a held write that fails fails the
transaction with its own error, and nothing of the transaction is kept.
"""

from __future__ import annotations

import pytest

from lucky_server.storage import Database, DatabaseError, Tx, UndefinedTable, UniqueViolation

ITEMS = "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL DEFAULT 0)"
ADD = "INSERT INTO items (id, name) VALUES (?, ?)"


@pytest.fixture
async def items(db: Database) -> Database:
    await db.execute("create_items", ITEMS)
    await db.execute("insert_item", ADD, (1, "taken"))
    return db


async def names(db: Database) -> list[str]:
    return [row["name"] for row in await db.fetch_all("SELECT name FROM items ORDER BY id")]


async def test_held_writes_are_seen_by_the_next_read_in_order(items: Database) -> None:
    async def run(tx: Tx) -> tuple[int, list[str]]:
        await tx.executemany(ADD, [(2, "b"), (3, "c")])
        await tx.executemany("UPDATE items SET n = n + 1 WHERE id >= ?", [(2,), (3,)])
        await tx.executemany("DELETE FROM items WHERE id = ?", [(2,)])
        # A later write's row count sees the held ones (b is gone, c was bumped twice).
        changed = await tx.execute("UPDATE items SET name = name || '!' WHERE n = ?", (2,))
        rows = await tx.fetch_all("SELECT name, n FROM items ORDER BY id")
        return changed, [f"{r['name']}={r['n']}" for r in rows]

    assert await items.transaction("run", run) == (1, ["taken=0", "c!=2"])
    assert await names(items) == ["taken", "c!"]


async def test_a_held_write_that_fails_fails_the_next_read_with_its_own_error(items: Database) -> None:
    seen: list[str] = []

    async def clash(tx: Tx) -> str:
        await tx.executemany(ADD, [(2, "new")])
        await tx.executemany(ADD, [(3, "taken")])  # fails, but only when sent
        await tx.executemany(ADD, [(4, "after")])
        try:
            await tx.fetch_all("SELECT name FROM items")
        except UniqueViolation:
            seen.append("unique")
        try:
            await tx.fetch_one("SELECT 1 AS one")
        except DatabaseError:
            seen.append("refused")
        return "swallowed"  # ignoring the errors must not commit anything

    with pytest.raises(DatabaseError):
        await items.transaction("clash", clash)
    assert seen == ["unique", "refused"]
    assert await names(items) == ["taken"]


async def test_a_held_write_that_fails_at_commit_keeps_its_type_and_nothing(items: Database) -> None:
    async def clash_last(tx: Tx) -> None:
        await tx.execute("UPDATE items SET n = 5 WHERE id = ?", (1,))
        await tx.executemany(ADD, [(2, "b")])
        await tx.executemany(ADD, [(1, "again")])

    with pytest.raises(UniqueViolation):
        await items.transaction("clash_last", clash_last)

    async def no_table(tx: Tx) -> None:
        await tx.executemany(ADD, [(2, "b")])
        await tx.executemany("INSERT INTO nowhere (id) VALUES (?)", [(1,)])

    with pytest.raises(UndefinedTable):
        await items.transaction("no_table", no_table)
    assert await items.fetch_all("SELECT name, n FROM items") == [{"name": "taken", "n": 0}]


async def test_an_exception_after_held_writes_keeps_none_of_them(items: Database) -> None:
    async def changes_its_mind(tx: Tx) -> None:
        await tx.executemany(ADD, [(2, "b")])
        raise LookupError("changed my mind")

    async def after_a_read(tx: Tx) -> None:
        await tx.executemany(ADD, [(3, "c")])
        await tx.fetch_all("SELECT id FROM items")
        await tx.executemany(ADD, [(4, "d")])
        raise LookupError("changed my mind")

    for fn in (changes_its_mind, after_a_read):
        with pytest.raises(LookupError):
            await items.transaction("undone", fn)
    assert await names(items) == ["taken"]


async def test_connections_stay_usable_after_many_failed_transactions(items: Database) -> None:
    # More failures than the pool has connections: each must come back to the pool clean.
    async def clash(tx: Tx) -> None:
        await tx.executemany(ADD, [(9, "taken")])
        await tx.fetch_one("SELECT 1 AS one")

    for _ in range(15):
        with pytest.raises(UniqueViolation):
            await items.transaction("clash", clash)

    async def nothing(tx: Tx) -> str:
        return "no statement"

    assert await items.transaction("nothing", nothing) == "no statement"
    await items.execute("insert_item", ADD, (2, "fine"))
    assert await names(items) == ["taken", "fine"]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_postgres_a_constraint_checked_at_commit_fails_the_transaction(db: Database) -> None:
    await db.execute("create", "CREATE TABLE once (v TEXT, CONSTRAINT one_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)")

    async def twice(tx: Tx) -> None:
        await tx.executemany("INSERT INTO once (v) VALUES (?)", [("x",), ("x",)])  # fine until COMMIT
        await tx.execute("INSERT INTO once (v) VALUES (?)", ("y",))

    with pytest.raises(UniqueViolation):
        await db.transaction("twice", twice)
    assert await db.fetch_all("SELECT v FROM once") == []


TEXTS = ['plain', 'with "quotes"', "back\\slash\\", "{braces},commas", "NULL", "", " spaces ", "line\nbreak",
         "ünïcødé ☃", '{"text": "a json body", "n": [1, 2]}', "\\\"", "'"]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_postgres_list_parameters_arrive_as_written(db: Database) -> None:
    # Lists go to PostgreSQL as array literals written by Lucky (see pg_arrays).
    await db.execute("create", "CREATE TABLE cells (i BIGINT, t TEXT, b BOOLEAN)")
    ints: list[int | None] = [0, -1, 2**63 - 1, None, -(2**63)]
    texts: list[str | None] = [TEXTS[1], TEXTS[2], TEXTS[4], TEXTS[9], None]
    bools: list[bool | None] = [True, False, None, True, False]

    async def insert(tx: Tx) -> None:
        await tx.executemany("INSERT INTO cells SELECT * FROM unnest(?::bigint[], ?::text[], ?::boolean[])",
                             [[ints, texts, bools]])

    await db.transaction("insert", insert)
    rows = await db.fetch_all("SELECT i, t, b FROM cells")
    assert sorted(rows, key=repr) == sorted(
        ({"i": i, "t": t, "b": b} for i, t, b in zip(ints, texts, bools, strict=True)), key=repr)

    got = await db.fetch_all("SELECT t FROM unnest(?::text[]) WITH ORDINALITY AS u (t, k) ORDER BY k", [TEXTS])
    assert [r["t"] for r in got] == TEXTS
    for empty in ([], [None, None]):
        got = await db.fetch_all("SELECT x FROM unnest(?::bigint[]) AS u (x)", [empty])
        assert [r["x"] for r in got] == empty
    # A list Lucky does not write itself (floats) is psycopg's, as before.
    got = await db.fetch_all("SELECT x FROM unnest(?::float8[]) AS u (x)", [[0.5, 1.25]])
    assert [r["x"] for r in got] == [0.5, 1.25]
