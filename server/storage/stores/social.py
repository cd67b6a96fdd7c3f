"""Friend requests, friendships (stored both ways) and blocks."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class FriendRequestRow:
    id: int
    from_id: int
    to_id: int
    message: str
    state: str
    created_at: int

    @classmethod
    def from_row(cls, row: Row) -> FriendRequestRow:
        return cls(int(row["id"]), int(row["from_id"]), int(row["to_id"]), row["message"], row["state"],
                   int(row["created_at"]))


_REQUEST = "SELECT id, from_id, to_id, message, state, created_at FROM friend_requests "


class SocialStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def request(self, request_id: int) -> FriendRequestRow | None:
        row = await self._db.fetch_one(_REQUEST + "WHERE id = ?", (request_id,))
        return FriendRequestRow.from_row(row) if row else None

    async def pending_between(self, from_id: int, to_id: int) -> FriendRequestRow | None:
        row = await self._db.fetch_one(
            _REQUEST + "WHERE from_id = ? AND to_id = ? AND state = 'pending' ORDER BY id DESC LIMIT 1",
            (from_id, to_id))
        return FriendRequestRow.from_row(row) if row else None

    async def add_request(self, tx: Tx, request: FriendRequestRow) -> None:
        await tx.execute(
            "INSERT INTO friend_requests (id, from_id, to_id, message, state, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (request.id, request.from_id, request.to_id, request.message, request.state, request.created_at,
             request.created_at))

    async def set_request_state(self, tx: Tx, request_id: int, state: str, now_ms: int) -> None:
        await tx.execute("UPDATE friend_requests SET state = ?, updated_at = ? WHERE id = ?",
                         (state, now_ms, request_id))

    async def requests(self, user_id: int, incoming: bool, before_id: int, limit: int) -> list[FriendRequestRow]:
        column = "to_id" if incoming else "from_id"
        rows = await self._db.fetch_all(
            _REQUEST + f"WHERE {column} = ? AND id < ? ORDER BY id DESC LIMIT ?", (user_id, before_id, limit))
        return [FriendRequestRow.from_row(r) for r in rows]

    async def befriend(self, tx: Tx, a: int, b: int, now_ms: int) -> None:
        await tx.executemany(
            "INSERT INTO friendships (user_id, friend_id, since) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id, friend_id) DO NOTHING",
            [(a, b, now_ms), (b, a, now_ms)])

    async def unfriend(self, tx: Tx, a: int, b: int) -> int:
        return await tx.execute(
            "DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
            (a, b, b, a))

    async def are_friends(self, a: int, b: int) -> bool:
        row = await self._db.fetch_one("SELECT 1 AS x FROM friendships WHERE user_id = ? AND friend_id = ?", (a, b))
        return row is not None

    async def friends(self, user_id: int, after_id: int, limit: int) -> list[tuple[int, int]]:
        """(friend id, since) by friend id."""
        rows = await self._db.fetch_all(
            "SELECT friend_id, since FROM friendships WHERE user_id = ? AND friend_id > ? ORDER BY friend_id LIMIT ?",
            (user_id, after_id, limit))
        return [(int(r["friend_id"]), int(r["since"])) for r in rows]

    async def friend_ids(self, user_id: int) -> list[int]:
        rows = await self._db.fetch_all("SELECT friend_id FROM friendships WHERE user_id = ?", (user_id,))
        return [int(r["friend_id"]) for r in rows]

    async def block(self, user_id: int, blocked_id: int, now_ms: int) -> None:
        await self._db.execute(
            "block", "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id, blocked_id) DO NOTHING", (user_id, blocked_id, now_ms))

    async def unblock(self, user_id: int, blocked_id: int) -> None:
        await self._db.execute("unblock", "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?",
                               (user_id, blocked_id))

    async def blocked(self, user_id: int, blocked_id: int) -> bool:
        row = await self._db.fetch_one("SELECT 1 AS x FROM blocks WHERE user_id = ? AND blocked_id = ?",
                                       (user_id, blocked_id))
        return row is not None

    async def blocks_of(self, user_id: int) -> list[int]:
        rows = await self._db.fetch_all("SELECT blocked_id FROM blocks WHERE user_id = ? ORDER BY blocked_id",
                                        (user_id,))
        return [int(r["blocked_id"]) for r in rows]
