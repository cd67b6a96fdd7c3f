"""The database port's snapshot: one instant for every table, whatever is written meanwhile,
and the same tables and kinds on both engines."""

from __future__ import annotations

from lucky_server.backup.snapshot import LEFT_OUT, backed_up, table_checksums
from lucky_server.storage import open_database
from lucky_server.storage.migrate import migrate

_USER = ("INSERT INTO users (id, username, display_name, is_admin, disabled, created_at, updated_at) "
         "VALUES (?, ?, ?, ?, FALSE, 1, 1)")


async def test_a_snapshot_sees_one_instant_while_writes_go_on(database_url: str) -> None:
    db = open_database(database_url)
    await db.open()
    try:
        await migrate(db, 1)
        await db.execute("user", _USER, (1, "first", "First", True))
        async with db.snapshot() as snapshot:
            shapes = {s.name: s for s in await snapshot.tables()}
            # Neither blocked by the open snapshot nor seen by it.
            await db.execute("user", _USER, (2, "second", "Second", False))
            await db.execute("message", "INSERT INTO conversations (id, kind, last_seq, created_at) VALUES (?, ?, ?, ?)",
                             ("p:1:2", "direct", 1, 1))
            users = [row async for batch in snapshot.rows(shapes["users"], 1) for row in batch]
            conversations = [row async for batch in snapshot.rows(shapes["conversations"], 10) for row in batch]
        assert [row[0] for row in users] == [1] and conversations == []
        kinds = {c.name: c.kind for c in shapes["users"].columns}
        assert (kinds["id"], kinds["username"], kinds["is_admin"]) == ("integer", "text", "boolean")
        assert shapes["refresh_tokens"].references == ("token_families",)
        # No engine table, no FTS5 shadow table; the search index itself is left out.
        assert not [n for n in shapes if n.startswith(("sqlite_", "message_search_"))]
        order = [s.name for s in backed_up(shapes.values())]
        assert not set(order) & set(LEFT_OUT)
        assert order.index("users") < order.index("token_families") < order.index("refresh_tokens")
        sums = await table_checksums(db, ["users", "conversations"])
        assert (sums["users"].rows, sums["conversations"].rows) == (2, 1)
    finally:
        await db.close()
