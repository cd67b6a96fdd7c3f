"""Who is in which conversation, and each member's read cursor and flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import Database, Row, Tx, as_columns


@dataclass(frozen=True)
class MembershipRow:
    conversation_id: str
    kind: str
    last_seq: int
    last_message_at: int
    read_seq: int
    muted: bool
    pinned: bool
    until_seq: int | None = None  # set once the member left: readable up to here
    mention_seq: int = 0

    @property
    def visible_seq(self) -> int:
        """The last seq this member may read."""
        return self.last_seq if self.until_seq is None else min(self.last_seq, self.until_seq)


_COLUMNS = ("SELECT m.conversation_id, c.kind, c.last_seq, c.last_message_at, m.read_seq, m.muted, m.pinned, "
            "m.until_seq, m.mention_seq ")
_SELECT = _COLUMNS + "FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id "
# A user's rows on PostgreSQL: each conversation by its primary key (OFFSET 0 keeps the lateral
# subquery from being flattened into a join the planner may run as a hash join). For a user in
# 2,000 of 100,000 conversations it otherwise reads the whole conversations table (18 ms, where
# the 2,000 lookups take 4), because it prices a cached index lookup as a disk seek; SQLite
# always joins by lookups.
_SELECT_EACH_PG = _COLUMNS + ("FROM conversation_members m CROSS JOIN LATERAL (SELECT kind, last_seq, last_message_at "
                              "FROM conversations WHERE id = m.conversation_id OFFSET 0) c ")


def _row(row: Row) -> MembershipRow:
    return MembershipRow(
        conversation_id=str(row["conversation_id"]),
        kind=str(row["kind"]),
        last_seq=int(row["last_seq"]),
        last_message_at=int(row["last_message_at"]),
        read_seq=int(row["read_seq"]),
        muted=bool(row["muted"]),
        pinned=bool(row["pinned"]),
        until_seq=None if row["until_seq"] is None else int(row["until_seq"]),
        mention_seq=int(row["mention_seq"]),
    )


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pg = db.dialect == "postgresql"  # batches go as arrays there (see as_columns)
        self._by_user = _SELECT_EACH_PG if self._pg else _SELECT

    async def ensure_members(self, tx: Tx, members: Sequence[tuple[str, int]], now_ms: int) -> None:
        """Make sure of these (conversation_id, user_id) memberships; existing ones are kept."""
        if members:
            await tx.executemany(
                "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?) "
                "ON CONFLICT (conversation_id, user_id) DO NOTHING",
                [(cid, uid, now_ms) for cid, uid in members],
            )

    async def join(self, tx: Tx, conversation_id: str, user_ids: Sequence[int], now_ms: int) -> None:
        """Make users members again or anew (a returning member reads on from where it is)."""
        await tx.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?) "
            "ON CONFLICT (conversation_id, user_id) DO UPDATE SET until_seq = NULL",
            [(conversation_id, uid, now_ms) for uid in user_ids],
        )

    async def leave(self, tx: Tx, conversation_id: str, user_id: int, until_seq: int) -> None:
        await tx.execute(
            "UPDATE conversation_members SET until_seq = ? WHERE conversation_id = ? AND user_id = ?",
            (until_seq, conversation_id, user_id),
        )

    async def mark_mentions(self, tx: Tx, rows: Sequence[tuple[int, str, int]]) -> None:
        """Rows of (seq, conversation_id, user_id): that member was mentioned at that seq."""
        await tx.executemany(
            "UPDATE conversation_members SET mention_seq = ? WHERE conversation_id = ? AND user_id = ? "
            "AND mention_seq < ?",
            [(seq, cid, uid, seq) for seq, cid, uid in rows],
        )

    async def for_user(self, user_id: int) -> list[MembershipRow]:
        """Every conversation of a user (through the members-by-user index)."""
        rows = await self._db.fetch_all(self._by_user + "WHERE m.user_id = ?", (user_id,))
        return [_row(r) for r in rows]

    async def page_for_user(self, user_id: int, limit: int, after: tuple[int, str] | None = None) -> list[MembershipRow]:
        """A user's conversations by last activity, newest first (ties by id), the `limit`
        after `after` = (last_message_at, conversation_id). The user's rows come through the
        members-by-user index and are ordered in the database, so only a page is read back."""
        if after is None:
            rows = await self._db.fetch_all(
                self._by_user + "WHERE m.user_id = ? ORDER BY c.last_message_at DESC, m.conversation_id LIMIT ?",
                (user_id, limit))
        else:
            at, cid = after
            rows = await self._db.fetch_all(
                self._by_user + "WHERE m.user_id = ? AND (c.last_message_at < ? OR (c.last_message_at = ? "
                "AND m.conversation_id > ?)) ORDER BY c.last_message_at DESC, m.conversation_id LIMIT ?",
                (user_id, at, at, cid, limit))
        return [_row(r) for r in rows]

    async def membership(self, conversation_id: str, user_id: int) -> MembershipRow | None:
        row = await self._db.fetch_one(_SELECT + "WHERE m.conversation_id = ? AND m.user_id = ?",
                                       (conversation_id, user_id))
        return _row(row) if row else None

    async def last_seq(self, conversation_id: str) -> int:
        row = await self._db.fetch_one("SELECT last_seq FROM conversations WHERE id = ?", (conversation_id,))
        return int(row["last_seq"]) if row else 0

    async def advance_read(self, tx: Tx, rows: Sequence[tuple[int, str, int]]) -> None:
        """Move read cursors forward only: rows of (seq, conversation_id, user_id)."""
        if self._pg:
            # The highest seq per member: an UPDATE ... FROM applies one source row per target.
            # executemany of one row of arrays: held until the transaction's next statement.
            await tx.executemany(
                "UPDATE conversation_members m SET read_seq = u.seq FROM ("
                "SELECT cid, uid, MAX(seq) AS seq FROM unnest(?::bigint[], ?::text[], ?::bigint[]) AS r (seq, cid, uid) "
                "GROUP BY cid, uid) u WHERE m.conversation_id = u.cid AND m.user_id = u.uid AND m.read_seq < u.seq",
                [as_columns(rows, 3)])
            return
        await tx.executemany(
            "UPDATE conversation_members SET read_seq = ? WHERE conversation_id = ? AND user_id = ? AND read_seq < ?",
            [(seq, cid, uid, seq) for seq, cid, uid in rows],
        )

    async def set_flags(self, conversation_id: str, user_id: int, muted: bool, pinned: bool) -> None:
        await self._db.execute(
            "conversation_flags",
            "UPDATE conversation_members SET muted = ?, pinned = ? WHERE conversation_id = ? AND user_id = ?",
            (muted, pinned, conversation_id, user_id),
        )
