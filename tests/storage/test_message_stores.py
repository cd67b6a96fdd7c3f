"""The batch statements of the send path on both databases (arrays on PostgreSQL, VALUES
lists and executemany on SQLite): each must give the same answers for any batch shape."""

from __future__ import annotations

from lucky_server.storage import Database, Tx
from lucky_server.storage.stores.conversations import ConversationStore
from lucky_server.storage.stores.messages import MessageStore
from lucky_server.storage.stores.outbox import OutboxStore

NOW = 1_800_000_000_000


def row(message_id: int, cid: str, seq: int, sender: int, cmid: str, reply_to: int | None = None) -> tuple[object, ...]:
    return (message_id, cid, seq, sender, "text", '{"text": "hi"}', cmid, NOW, reply_to, None, False)


async def test_bump_seqs_creates_and_advances_every_conversation_of_a_batch(migrated_db: Database) -> None:
    messages = MessageStore(migrated_db)

    async def bump(counts: list[tuple[str, str, int]]) -> dict[str, int]:
        return await migrated_db.transaction("bump", lambda tx: messages.bump_seqs(tx, counts, NOW))

    assert await bump([("p:1:2", "direct", 3), ("g:9", "group", 1)]) == {"p:1:2": 3, "g:9": 1}
    assert await bump([("g:9", "group", 5), ("p:1:3", "direct", 2), ("p:1:2", "direct", 1)]) == {
        "g:9": 6, "p:1:3": 2, "p:1:2": 4}
    assert await bump([]) == {}


async def test_existing_finds_exactly_the_stored_keys(migrated_db: Database) -> None:
    messages = MessageStore(migrated_db)

    async def store(tx: Tx) -> None:
        await messages.insert_many(tx, [row(11, "p:1:2", 1, 1, "a"), row(12, "p:1:2", 2, 2, "a", reply_to=11),
                                        row(13, "p:1:2", 3, 1, "b")])

    await migrated_db.transaction("store", store)
    keys = [(1, "a"), (2, "a"), (2, "b"), (3, "a"), (1, "c")]
    found = await migrated_db.transaction("existing", lambda tx: messages.existing(tx, keys))
    assert sorted((m.id, m.sender_id, m.client_msg_id, m.reply_to) for m in found) == [
        (11, 1, "a", None), (12, 2, "a", 11)]
    assert await migrated_db.transaction("none", lambda tx: messages.existing(tx, [])) == []


async def test_outbox_rows_are_added_and_deleted_by_batch(migrated_db: Database) -> None:
    outbox = OutboxStore(migrated_db)

    async def add(tx: Tx) -> None:
        await outbox.add(tx, [(21, "p:1:2"), (22, "p:1:2"), (23, "g:9")], NOW, NOW + 5000)

    await migrated_db.transaction("add", add)
    assert [(c.kind, c.pending, c.failed) for c in await outbox.counts()] == [("message", 3, 0)]
    await outbox.done([21, 23, 99])
    rows = await migrated_db.fetch_all("SELECT message_id FROM outbox")
    assert [int(r["message_id"]) for r in rows] == [22]


async def test_advance_read_moves_each_cursor_forward_only(migrated_db: Database) -> None:
    conversations = ConversationStore(migrated_db)

    async def join(tx: Tx) -> None:
        await conversations.ensure_members(tx, [("p:1:2", 1), ("p:1:2", 2), ("g:9", 1)], NOW)

    await migrated_db.transaction("join", join)

    async def advance(rows: list[tuple[int, str, int]]) -> None:
        await migrated_db.transaction("read", lambda tx: conversations.advance_read(tx, rows))

    # The same member twice in one batch: the higher seq wins, whatever the order.
    await advance([(7, "p:1:2", 1), (4, "p:1:2", 1), (2, "p:1:2", 2), (5, "g:9", 1)])
    await advance([(3, "p:1:2", 1), (1, "p:1:2", 2)])  # older cursors never move back
    rows = await migrated_db.fetch_all(
        "SELECT conversation_id, user_id, read_seq FROM conversation_members ORDER BY conversation_id, user_id")
    assert [(r["conversation_id"], int(r["user_id"]), int(r["read_seq"])) for r in rows] == [
        ("g:9", 1, 5), ("p:1:2", 1, 7), ("p:1:2", 2, 2)]
