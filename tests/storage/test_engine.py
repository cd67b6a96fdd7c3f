"""The database engine on SQLite and PostgreSQL: reads, write transactions, errors, closing.

Every test here runs against a real database of each kind (the `backend` fixture); the
SQLite-only tests cover its writer task, which group-commits concurrent transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest

from lucky_server.storage import Database, DatabaseError, Tx, UniqueViolation, open_database
from lucky_server.storage.sqlite import SqliteDatabase

T = TypeVar("T")
ITEMS = "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL DEFAULT 0)"


@pytest.fixture
async def items(db: Database) -> Database:
    """The database with an empty `items` table."""
    await db.execute("create_items", ITEMS)
    return db


async def insert(db: Database, item_id: int, name: str, n: int = 0) -> None:
    await db.execute("insert_item", "INSERT INTO items (id, name, n) VALUES (?, ?, ?)", (item_id, name, n))


async def names(db: Database) -> list[str]:
    return [row["name"] for row in await db.fetch_all("SELECT name FROM items ORDER BY id")]


class Boom(Exception):
    pass


# --- reads and single statements ------------------------------------------------------------


async def test_fetch_one_and_fetch_all_return_dicts(items: Database) -> None:
    await insert(items, 1, "one", 10)
    await insert(items, 2, "two", 20)
    assert await items.fetch_one("SELECT id, name, n FROM items WHERE id = ?", (2,)) == {
        "id": 2, "name": "two", "n": 20,
    }
    assert await items.fetch_one("SELECT id FROM items WHERE id = ?", (99,)) is None
    rows = await items.fetch_all("SELECT id, name FROM items WHERE n >= ? ORDER BY id DESC", (0,))
    assert rows == [{"id": 2, "name": "two"}, {"id": 1, "name": "one"}]
    assert await items.fetch_all("SELECT id FROM items WHERE n > ?", (100,)) == []


async def test_execute_counts_changed_rows(items: Database) -> None:
    for i in range(5):
        await insert(items, i, f"item{i}", i)
    assert await items.execute("bump", "UPDATE items SET n = n + 1 WHERE n >= ?", (3,)) == 2
    assert await items.execute("bump_none", "UPDATE items SET n = 0 WHERE id = ?", (99,)) == 0
    assert await items.execute("delete", "DELETE FROM items WHERE id < ?", (2,)) == 2
    assert await names(items) == ["item2", "item3", "item4"]


async def test_question_marks_and_percents_inside_literals_are_left_alone(items: Database) -> None:
    # Placeholders are `?` on both databases; a `?` or `%` in a string literal is text.
    await insert(items, 1, "what?")
    row = await items.fetch_one(
        "SELECT name, 'a?b' AS lit, '100%' AS pct, ? AS param FROM items WHERE name = 'what?' AND id = ?",
        ("p", 1),
    )
    assert row == {"name": "what?", "lit": "a?b", "pct": "100%", "param": "p"}
    like = await items.fetch_all("SELECT name FROM items WHERE name LIKE 'wh%'")
    assert like == [{"name": "what?"}]


async def test_null_and_unicode_round_trip(db: Database) -> None:
    await db.execute("create", "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT, big BIGINT)")
    await db.execute("insert", "INSERT INTO notes (id, body, big) VALUES (?, ?, ?)",
                     (1, "héllo 😀 \u4e16\u754c", 2**62))
    await db.execute("insert", "INSERT INTO notes (id, body, big) VALUES (?, ?, ?)", (2, None, None))
    assert await db.fetch_all("SELECT id, body, big FROM notes ORDER BY id") == [
        {"id": 1, "body": "héllo 😀 \u4e16\u754c", "big": 2**62},
        {"id": 2, "body": None, "big": None},
    ]


async def test_ping(db: Database) -> None:
    await db.ping()
    assert db.description


# --- transactions -----------------------------------------------------------------------------


async def test_transaction_returns_the_result_once_committed(items: Database) -> None:
    async def add_three(tx: Tx) -> int:
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM items")
        assert row is not None
        return int(row["n"])

    assert await items.transaction("add_three", add_three) == 3
    assert await names(items) == ["a", "b", "c"]


async def test_a_transaction_sees_its_own_writes(items: Database) -> None:
    async def write_then_read(tx: Tx) -> list[str]:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "mine"))
        await tx.execute("UPDATE items SET n = ? WHERE id = ?", (7, 1))
        rows = await tx.fetch_all("SELECT name, n FROM items")
        return [f"{r['name']}={r['n']}" for r in rows]

    assert await items.transaction("write_then_read", write_then_read) == ["mine=7"]


async def test_a_failing_transaction_leaves_nothing_written(items: Database) -> None:
    await insert(items, 1, "before")

    async def half_done(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (2, "half"))
        await tx.execute("UPDATE items SET n = 99 WHERE id = ?", (1,))
        await tx.execute("DELETE FROM items WHERE id = ?", (1,))
        raise Boom("changed my mind")

    with pytest.raises(Boom, match="changed my mind"):
        await items.transaction("half_done", half_done)
    assert await items.fetch_all("SELECT id, name, n FROM items") == [{"id": 1, "name": "before", "n": 0}]
    # The database is still usable afterwards.
    await insert(items, 3, "after")
    assert await names(items) == ["before", "after"]


async def test_unique_violation_is_translated(items: Database) -> None:
    await insert(items, 1, "taken")
    with pytest.raises(UniqueViolation):
        await insert(items, 2, "taken")
    with pytest.raises(UniqueViolation):
        await insert(items, 1, "other")  # the primary key too
    assert isinstance(UniqueViolation("x"), DatabaseError)
    await insert(items, 2, "free")
    assert await names(items) == ["taken", "free"]


async def test_unique_violation_from_executemany_writes_none_of_the_rows(items: Database) -> None:
    async def add(tx: Tx) -> None:
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "x"), (2, "y"), (3, "x")])

    with pytest.raises(UniqueViolation):
        await items.transaction("add", add)
    assert await names(items) == []


async def test_a_unique_violation_inside_a_transaction_rolls_all_of_it_back(items: Database) -> None:
    await insert(items, 1, "taken")

    async def clash(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (2, "new"))
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (3, "taken"))

    with pytest.raises(UniqueViolation):
        await items.transaction("clash", clash)
    assert await names(items) == ["taken"]


async def test_a_statement_error_ends_the_transaction_on_both_databases(items: Database) -> None:
    # PostgreSQL refuses every statement after an error in a transaction; SQLite would carry
    # on. The engine makes SQLite refuse too, so that code relying on carrying on fails on
    # the developer's SQLite instead of in production on PostgreSQL.
    await insert(items, 1, "taken")
    seen: list[str] = []

    async def swallow(tx: Tx) -> None:
        try:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (2, "taken"))
        except UniqueViolation:
            seen.append("unique")
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (3, "later"))

    with pytest.raises(DatabaseError):
        await items.transaction("swallow", swallow)
    assert seen == ["unique"]
    assert await names(items) == ["taken"]


async def test_a_transaction_that_ignores_a_failed_statement_does_not_commit(items: Database) -> None:
    await insert(items, 1, "taken")

    async def ignore(tx: Tx) -> str:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (2, "kept?"))
        try:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (3, "taken"))
        except UniqueViolation:
            pass
        return "done"

    with pytest.raises(DatabaseError):
        await items.transaction("ignore", ignore)
    assert await names(items) == ["taken"]


async def test_a_syntax_error_is_a_database_error(items: Database) -> None:
    with pytest.raises(DatabaseError):
        await items.fetch_all("SELEKT * FROM items")
    with pytest.raises(DatabaseError):
        await items.execute("bad", "INSERT INTO nowhere (x) VALUES (?)", (1,))
    await insert(items, 1, "fine")
    assert await names(items) == ["fine"]


async def test_readers_see_every_committed_write(items: Database) -> None:
    # SQLite reads go round-robin over reader connections: each must see the latest commit.
    for i in range(6):
        await insert(items, i, f"n{i}")
        for _ in range(3):
            row = await items.fetch_one("SELECT COUNT(*) AS n FROM items")
            assert row == {"n": i + 1}


async def test_a_read_after_a_commit_sees_it_while_other_reads_run(items: Database) -> None:
    # Reads never stop on a busy server. A read that starts after a commit must see it, even
    # while other reads on the same connections are in progress (an open statement on a
    # SQLite connection would keep its old snapshot for every later read on it).
    await insert(items, 1, "counter", 0)
    stop = asyncio.Event()

    async def reading() -> None:
        while not stop.is_set():
            await items.fetch_all("SELECT id, name, n FROM items")

    background = [asyncio.create_task(reading()) for _ in range(4)]
    try:
        for n in range(1, 31):
            await items.execute("bump", "UPDATE items SET n = ? WHERE id = 1", (n,))
            seen = await asyncio.gather(*(items.fetch_one("SELECT n FROM items WHERE id = 1") for _ in range(3)))
            assert seen == [{"n": n}] * 3
    finally:
        stop.set()
        await asyncio.gather(*background)


async def test_concurrent_transactions_all_commit(items: Database) -> None:
    async def add(i: int) -> int:
        async def run(tx: Tx) -> int:
            await tx.execute("INSERT INTO items (id, name, n) VALUES (?, ?, ?)", (i, f"c{i}", i))
            return i

        return await items.transaction("add", run)

    results = await asyncio.gather(*(add(i) for i in range(40)))
    assert sorted(results) == list(range(40))
    row = await items.fetch_one("SELECT COUNT(*) AS n, SUM(n) AS total FROM items")
    assert row is not None
    assert (int(row["n"]), int(row["total"])) == (40, sum(range(40)))


@pytest.mark.parametrize("mix", ["plain", "on-thread", "mixed", "waves", "started", "started-waves"])
async def test_concurrent_increments_lose_nothing(items: Database, mix: str) -> None:
    """Whichever way transactions reach the writer connection (queued, an on-thread one run
    from its caller while the writer is idle, or one started and awaited later), they never
    interleave."""
    await insert(items, 1, "counter", 0)

    async def bump(tx: Tx) -> int:
        row = await tx.fetch_one("UPDATE items SET n = n + 1 WHERE id = ? RETURNING n", (1,))
        assert row is not None
        return int(row["n"])

    def one(i: int) -> Awaitable[int]:
        if mix.startswith("started") and i % 3 == 0:
            return items.start_on_thread("bump", bump)
        on_thread = mix == "on-thread" or (mix != "plain" and i % 2 == 1)
        return items.transaction_on_thread("bump", bump) if on_thread else items.transaction("bump", bump)

    async def later(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 5))  # waves: some arrive while others run
        return await one(i)

    seen = await asyncio.gather(*((later(i) if mix.endswith("waves") else one(i)) for i in range(30)))
    assert sorted(seen) == list(range(1, 31))
    assert await items.fetch_one("SELECT n FROM items WHERE id = ?", (1,)) == {"n": 30}


# --- opening and closing ----------------------------------------------------------------------


async def test_closing_drains_pending_writes(database_url: str) -> None:
    db = open_database(database_url)
    await db.open()
    await db.execute("create_items", ITEMS)
    started = asyncio.Event()
    count = 25
    entered = 0

    async def add(i: int) -> int:
        async def run(tx: Tx) -> int:
            nonlocal entered
            entered += 1
            if entered == count // 2:
                started.set()
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (i, f"p{i}"))
            return i

        return await db.transaction("add", run)

    tasks = [asyncio.create_task(add(i)) for i in range(count)]
    await started.wait()  # some writes are running, others still queued
    await db.close()
    assert sorted(await asyncio.gather(*tasks)) == list(range(count))

    again = open_database(database_url)
    await again.open()
    try:
        row = await again.fetch_one("SELECT COUNT(*) AS n FROM items")
        assert row is not None and int(row["n"]) == count
    finally:
        await again.close()


async def test_a_closed_database_refuses_work(database_url: str) -> None:
    db = open_database(database_url)
    await db.open()
    await db.close()
    with pytest.raises(DatabaseError):
        await db.fetch_one("SELECT 1 AS one")
    with pytest.raises(DatabaseError):
        await db.execute("late", "SELECT 1")
    await db.close()  # closing twice is harmless


async def test_writes_asked_for_while_closing_fail_instead_of_hanging(database_url: str) -> None:
    db = open_database(database_url)
    await db.open()
    await db.execute("create_items", ITEMS)

    async def late(i: int) -> None:
        await db.execute("late", "INSERT INTO items (id, name) VALUES (?, ?)", (i, f"l{i}"))

    # The tasks first run once close() has begun.
    tasks = [asyncio.create_task(late(i)) for i in range(5)]
    await db.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)
    for outcome in outcomes:
        assert outcome is None or isinstance(outcome, DatabaseError), outcome


def test_unsupported_url() -> None:
    with pytest.raises(DatabaseError, match="unsupported database URL"):
        open_database("mysql://root@localhost/lucky")


async def test_unreachable_postgresql_fails_fast_with_a_reason() -> None:
    db = open_database("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(DatabaseError, match="cannot reach"):
        await asyncio.wait_for(db.open(), timeout=5)


def test_a_bad_postgresql_url_is_a_database_error() -> None:
    with pytest.raises(DatabaseError):
        open_database("postgresql://postgres@127.0.0.1:port/test")
    with pytest.raises(DatabaseError, match="schema"):
        open_database("postgresql://postgres@127.0.0.1/test?schema=Robert');DROP")


def test_postgresql_description_hides_the_password() -> None:
    db = open_database("postgresql://lucky:hunter2@db.example:5433/lucky?schema=site_a")
    assert "hunter2" not in db.description
    assert "db.example:5433" in db.description and "site_a" in db.description


# --- SQLite specifics -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_group_commit_batches_concurrent_transactions(items: Database) -> None:
    assert isinstance(items, SqliteDatabase)
    before = items.batches_committed
    count = 100

    async def add(i: int) -> None:
        async def run(tx: Tx) -> None:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (i, f"g{i}"))

        await items.transaction("add", run)

    await asyncio.gather(*(add(i) for i in range(count)))
    batches = items.batches_committed - before
    assert 1 <= batches < count
    assert items.last_batch_size > 1
    row = await items.fetch_one("SELECT COUNT(*) AS n FROM items")
    assert row == {"n": count}


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("mixed", [False, True], ids=["plain", "mixed-with-on-thread"])
async def test_sqlite_one_failing_job_does_not_break_its_batch(items: Database, mixed: bool) -> None:
    assert isinstance(items, SqliteDatabase)
    await insert(items, 0, "taken")
    before = items.batches_committed

    def job(i: int) -> Awaitable[int]:
        async def run(tx: Tx) -> int:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (i, f"j{i}"))
            if i == 5:
                raise Boom("job 5")
            if i == 7:
                await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1000 + i, "taken"))
            return i

        if mixed and i % 2:  # plain and on-thread transactions share one queue and one batch
            return items.transaction_on_thread(f"job{i}", run)
        return items.transaction(f"job{i}", run)

    outcomes = await asyncio.gather(*(job(i) for i in range(1, 11)), return_exceptions=True)
    assert isinstance(outcomes[4], Boom)
    assert isinstance(outcomes[6], UniqueViolation)
    assert [o for o in outcomes if isinstance(o, int)] == [1, 2, 3, 4, 6, 8, 9, 10]
    assert items.batches_committed - before < 10
    assert await names(items) == ["taken", "j1", "j2", "j3", "j4", "j6", "j8", "j9", "j10"]


async def test_writes_in_order_whatever_the_mix_of_execute_and_executemany(items: Database) -> None:
    # SQLite holds executemany rows until the next awaited statement; order must not change.
    async def mixed(tx: Tx) -> list[str]:
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a"), (2, "b")])
        changed = await tx.execute("UPDATE items SET name = name || '+' WHERE id <= ?", (2,))
        await tx.executemany("UPDATE items SET n = ? WHERE id = ?", [(changed, 1)])
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [])
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(3, "c")])
        return [f"{r['name']}={r['n']}" for r in await tx.fetch_all("SELECT name, n FROM items ORDER BY id")]

    assert await items.transaction("mixed", mixed) == ["a+=2", "b+=0", "c=0"]
    assert await names(items) == ["a+", "b+", "c"]


async def test_a_transaction_of_executemany_alone_commits_and_fails_whole(items: Database) -> None:
    async def only_many(tx: Tx) -> None:
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "a")])
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(2, "b")])

    await items.transaction("only_many", only_many)

    async def clash_last(tx: Tx) -> None:
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(3, "c")])
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(1, "again")])

    with pytest.raises(UniqueViolation):
        await items.transaction("clash_last", clash_last)
    assert await names(items) == ["a", "b"]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_jobs_failing_before_any_statement_or_in_their_last_writes_fail_alone(
        items: Database) -> None:
    assert isinstance(items, SqliteDatabase)
    gate = asyncio.Event()

    async def hold(tx: Tx) -> None:
        await gate.wait()  # keeps the writer busy so that the jobs below queue into one batch

    def job(i: int) -> Awaitable[int]:
        async def run(tx: Tx) -> int:
            if i == 2:
                raise Boom("before any statement")
            await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(i, f"j{i}")])
            if i == 4:
                await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(100 + i, "x"), (1, "dup")])
            return i

        return items.transaction(f"job{i}", run)

    blocker = asyncio.ensure_future(items.transaction("hold", hold))
    await asyncio.sleep(0.05)
    jobs = [asyncio.ensure_future(job(i)) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(outcomes[1], Boom)
    assert isinstance(outcomes[3], UniqueViolation)
    assert [o for o in outcomes if isinstance(o, int)] == [1, 3, 5]
    assert items.last_batch_size == 5
    assert await names(items) == ["j1", "j3", "j5"]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_write_cancelled_while_queued_never_runs(items: Database) -> None:
    inside, gate = asyncio.Event(), asyncio.Event()

    async def hold(tx: Tx) -> None:
        inside.set()
        await gate.wait()  # keeps the writer busy, so the next write waits in the queue
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "held"))

    holder = asyncio.create_task(items.transaction("hold", hold))
    await inside.wait()
    queued = asyncio.create_task(insert(items, 2, "given up"))
    await asyncio.sleep(0)  # one turn: the write is now queued behind the held one
    queued.cancel()
    gate.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await queued
    await insert(items, 3, "after")
    assert await names(items) == ["held", "after"]


@pytest.mark.parametrize("name", ["a b.db", "100%.db", "hash#tag.db", "what?.db", "ünï.db"])
async def test_sqlite_url_path_is_unquoted(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "with space"
    url = f"sqlite://{quote(str(folder / name))}"
    db = open_database(url)
    await db.open()
    try:
        await db.execute("create_items", ITEMS)
        await insert(db, 1, "x")
        assert await names(db) == ["x"]
    finally:
        await db.close()
    assert (folder / name).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["with space"]


async def test_sqlite_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = open_database("sqlite:relative.db")
    await db.open()
    await db.close()
    assert (tmp_path / "relative.db").is_file()


@pytest.mark.parametrize("url", ["sqlite:", "sqlite://", "sqlite:///"])
def test_sqlite_url_without_a_path(url: str) -> None:
    with pytest.raises(DatabaseError, match="path"):
        open_database(url)


async def test_sqlite_unwritable_location_is_a_database_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    db = open_database(f"sqlite://{blocker}/lucky.db")
    with pytest.raises(DatabaseError, match="cannot open"):
        await db.open()


# --- transaction_on_thread: a transaction that awaits only its Tx ---------------------------

# Both ways of running one: awaited at once, or started now and awaited later.
HOW = pytest.mark.parametrize("how", ["awaited", "started"])


def on_thread(db: Database, how: str, name: str, fn: Callable[[Tx], Awaitable[T]]) -> Awaitable[T]:
    return db.transaction_on_thread(name, fn) if how == "awaited" else db.start_on_thread(name, fn)


@HOW
async def test_a_transaction_on_thread_reads_its_writes_and_commits_once_done(items: Database, how: str) -> None:
    async def run(tx: Tx) -> list[str]:
        await tx.executemany("INSERT INTO items (id, name, n) VALUES (?, ?, ?)", [(1, "a", 1), (2, "b", 2)])
        changed = await tx.execute("UPDATE items SET n = n + 10 WHERE id = ?", (2,))
        assert changed == 1
        row = await tx.fetch_one("SELECT n FROM items WHERE id = ?", (2,))
        assert row == {"n": 12}
        return [r["name"] for r in await tx.fetch_all("SELECT name FROM items ORDER BY id")]

    assert await on_thread(items, how, "on_thread", run) == ["a", "b"]
    assert await names(items) == ["a", "b"]


@HOW
async def test_a_failing_transaction_on_thread_keeps_nothing_and_keeps_its_error(items: Database, how: str) -> None:
    await insert(items, 1, "taken")

    async def clash(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (2, "new"))
        await tx.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(3, "other"), (4, "taken")])

    with pytest.raises(UniqueViolation):
        await on_thread(items, how, "clash", clash)

    async def raises(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (5, "five"))
        raise Boom("after a write")

    with pytest.raises(Boom):
        await on_thread(items, how, "raises", raises)

    async def ignores(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (6, "six"))
        try:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (7, "taken"))
        except UniqueViolation:
            pass  # ignoring it must not commit the transaction

    with pytest.raises(DatabaseError):
        await on_thread(items, how, "ignores", ignores)
    assert await names(items) == ["taken"]


@HOW
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_transaction_on_thread_that_awaits_anything_else_fails_and_keeps_nothing(
        items: Database, how: str) -> None:
    async def waits(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "one"))
        await asyncio.sleep(0)  # would run the rest on the database's thread outside the loop

    with pytest.raises(RuntimeError, match="awaited something other than its Tx"):
        await on_thread(items, how, "waits", waits)
    assert await names(items) == []
    await insert(items, 2, "two")  # the writer goes on
    assert await names(items) == ["two"]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_started_transaction_runs_while_the_loop_is_busy(items: Database) -> None:
    """`start_on_thread` hands the transaction to the connection's thread before it returns:
    it commits while the event loop is still busy with something else (here, sleeping)."""
    assert isinstance(items, SqliteDatabase)

    async def add(tx: Tx) -> str:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "one"))
        return "done"

    started = items.start_on_thread("add", add)
    outside = sqlite3.connect(items.path, timeout=5)
    try:
        for _ in range(100):  # the loop is blocked all this time: only the thread can commit
            time.sleep(0.02)
            if outside.execute("SELECT name FROM items").fetchall() == [("one",)]:
                break
        else:
            pytest.fail("the started transaction did not commit while the loop was busy")
    finally:
        outside.close()
    assert await started == "done"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_started_transaction_given_up_on_still_frees_the_connection(items: Database) -> None:
    async def add(tx: Tx) -> None:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "one"))

    started = items.start_on_thread("add", add)
    started.cancel()  # its caller stopped waiting: what ran on the thread stands
    await asyncio.wait_for(insert(items, 2, "two"), 10)  # and the connection is free for the next
    assert await names(items) == ["one", "two"]
