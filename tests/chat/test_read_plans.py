"""Every statement of the read paths is served by an index (issue 14), on both databases.

The statements are recorded from the real service calls (history in each direction, `sync`,
the conversation list and its next page, a direct and a group conversation), so a statement
added to these paths later is checked too. Each is explained (SQLite: EXPLAIN QUERY PLAN;
PostgreSQL: EXPLAIN with sequential scans disabled, since on a table this small a scan is the
planner's right choice, so a scan left means that no index can serve the statement) and none
may read a whole table, or a whole index, of messages, memberships, conversations or users.
"""

from __future__ import annotations

from bench import plans

from .conftest import Chat, direct_id


async def test_every_read_path_statement_is_served_by_an_index(chat: Chat) -> None:
    alice, bob, carol = [await chat.user(n) for n in ("alice", "bob", "carol")]
    a = await chat.connect(alice)
    with_bob, with_carol = direct_id(alice, bob), direct_id(alice, carol)
    for i in range(3):
        await a.send_text(bob.id, f"to bob {i}", f"b{i}")
        chat.clock.advance(1)
        await a.send_text(carol.id, f"to carol {i}", f"c{i}")
    status, group = await alice.api.call("POST", "/api/v1/groups", {"name": "plans", "member_ids": [bob.id]})
    assert status == 201, group
    in_group = f"g:{group['id']}"  # its first message: the group's creation, the newest activity

    service, db, me = chat.service, chat.api.core.db, int(alice.id)
    with plans.recording(db) as statements:
        newest, _ = await service.history(me, with_bob, None, None, 2)
        assert [m.seq for m in newest] == [2, 3]
        assert [m.seq for m in (await service.history(me, with_bob, 3, None, 2))[0]] == [1, 2]
        assert [m.seq for m in (await service.history(me, with_bob, None, 1, 2))[0]] == [2, 3]
        assert [m.seq for m in (await service.history(me, in_group, None, None, 50))[0]][-1] >= 1
        synced, more = await service.sync(me, {}, 4)
        assert len(synced) == 4 and more
        await service.sync(me, {with_bob: 3, with_carol: 1}, 100)
        page, cursor = await service.conversations(me, None, 2)
        assert cursor is not None and [v.membership.conversation_id for v in page][0] == in_group
        assert all(v.last_message is not None for v in page)
        await service.conversations(me, cursor, 2)

    sqls = " ".join(s.sql for s in statements)
    assert "FROM messages" in sqls and "conversation_members" in sqls  # the recorder saw the paths
    scanned = {}
    leading = await plans.leading_columns(db)
    for statement in statements:
        plan = await plans.explain(db, statement, force_index=True)
        if plans.scans(db.dialect, plan, leading):
            scanned[statement.sql] = plan
    assert scanned == {}
