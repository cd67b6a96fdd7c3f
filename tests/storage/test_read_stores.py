"""The read statements of the conversation list (issue 14): a page in one statement each, with
the answers the per-conversation lookups and the sort in Python used to give."""

from __future__ import annotations

from lucky_server.storage import Database, Tx
from lucky_server.storage.stores.conversations import ConversationStore
from lucky_server.storage.stores.messages import MessageStore

NOW = 1_800_000_000_000


async def _conversation(db: Database, cid: str, members: list[int], messages: int, at: int) -> None:
    async def write(tx: Tx) -> None:
        await tx.execute("INSERT INTO conversations (id, kind, last_seq, last_message_at, created_at) "
                         "VALUES (?, 'direct', ?, ?, ?)", (cid, messages, at, NOW))
        await ConversationStore(db).ensure_members(tx, [(cid, uid) for uid in members], NOW)
        await MessageStore(db).insert_many(tx, [
            (int(cid[2:].replace(":", "")) * 100 + seq, cid, seq, members[seq % len(members)], "text",
             f'{{"text": "{cid} {seq}"}}', f"{cid}-{seq}", at, None, None, False)
            for seq in range(1, messages + 1)])

    await db.transaction("seed", write)


async def test_last_of_gives_the_newest_message_of_each_conversation_in_one_statement(migrated_db: Database) -> None:
    await _conversation(migrated_db, "p:1:2", [1, 2], 5, NOW)
    await _conversation(migrated_db, "p:1:3", [1, 3], 1, NOW)
    await _conversation(migrated_db, "p:1:4", [1, 4], 0, NOW)  # none yet
    messages = MessageStore(migrated_db)
    last = await messages.last_of(["p:1:2", "p:1:3", "p:1:4", "p:9:9"])
    assert {cid: (m.seq, m.body["text"]) for cid, m in last.items()} == {"p:1:2": (5, "p:1:2 5"), "p:1:3": (1, "p:1:3 1")}
    assert await messages.last_of([]) == {}


async def test_page_for_user_orders_by_activity_then_id_and_pages_through_ties(migrated_db: Database) -> None:
    # Three conversations share one last activity: the id breaks the tie, and a cursor in the
    # middle of the tie goes on from there.
    for cid, at in [("p:1:2", NOW + 5), ("p:1:3", NOW + 9), ("p:1:4", NOW + 5), ("p:1:5", NOW + 5), ("p:1:6", NOW)]:
        await _conversation(migrated_db, cid, [1, int(cid[-1])], 1, at)
    await _conversation(migrated_db, "p:7:8", [7, 8], 1, NOW + 99)  # someone else's
    store = ConversationStore(migrated_db)
    everything = [m.conversation_id for m in await store.page_for_user(1, 10)]
    assert everything == ["p:1:3", "p:1:2", "p:1:4", "p:1:5", "p:1:6"]
    pages, after = [], None
    while True:
        page = await store.page_for_user(1, 2, after)
        if not page:
            break
        pages.append([m.conversation_id for m in page])
        after = (page[-1].last_message_at, page[-1].conversation_id)
    assert pages == [["p:1:3", "p:1:2"], ["p:1:4", "p:1:5"], ["p:1:6"]]
    assert await store.page_for_user(2, 5) != [] and await store.page_for_user(99, 5) == []
