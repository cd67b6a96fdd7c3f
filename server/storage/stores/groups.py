"""Groups, their members (current and former) and join requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class GroupRow:
    id: int
    name: str
    owner_id: int
    announcement: str
    join_policy: str
    muted_all: bool
    avatar_file_id: int | None
    dismissed: bool
    member_count: int
    created_at: int

    @classmethod
    def from_row(cls, row: Row) -> GroupRow:
        return cls(int(row["id"]), row["name"], int(row["owner_id"]), row["announcement"], row["join_policy"],
                   bool(row["muted_all"]), row["avatar_file_id"], bool(row["dismissed"]), int(row["member_count"]),
                   int(row["created_at"]))


@dataclass(frozen=True)
class MemberRow:
    group_id: int
    user_id: int
    role: str
    muted_until: int | None
    joined_at: int
    active: bool

    @classmethod
    def from_row(cls, row: Row) -> MemberRow:
        return cls(int(row["group_id"]), int(row["user_id"]), row["role"], row["muted_until"], int(row["joined_at"]),
                   bool(row["active"]))


@dataclass(frozen=True)
class JoinRequestRow:
    id: int
    group_id: int
    user_id: int
    message: str
    state: str
    created_at: int

    @classmethod
    def from_row(cls, row: Row) -> JoinRequestRow:
        return cls(int(row["id"]), int(row["group_id"]), int(row["user_id"]), row["message"], row["state"],
                   int(row["created_at"]))


_GROUP = ("SELECT id, name, owner_id, announcement, join_policy, muted_all, avatar_file_id, dismissed, "
          "member_count, created_at FROM groups ")
_MEMBER = "SELECT group_id, user_id, role, muted_until, joined_at, active FROM group_members "
_JOIN = "SELECT id, group_id, user_id, message, state, created_at FROM group_join_requests "


class GroupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def group(self, group_id: int) -> GroupRow | None:
        row = await self._db.fetch_one(_GROUP + "WHERE id = ?", (group_id,))
        return GroupRow.from_row(row) if row else None

    async def groups_of(self, user_id: int) -> list[GroupRow]:
        """The groups a user is an active member of, newest first."""
        rows = await self._db.fetch_all(
            "SELECT g.id, g.name, g.owner_id, g.announcement, g.join_policy, g.muted_all, g.avatar_file_id, "
            "g.dismissed, g.member_count, g.created_at FROM group_members m JOIN groups g ON g.id = m.group_id "
            "WHERE m.user_id = ? AND m.active = TRUE ORDER BY g.id DESC", (user_id,))
        return [GroupRow.from_row(r) for r in rows]

    async def all_groups(self, before_id: int, limit: int) -> list[GroupRow]:
        rows = await self._db.fetch_all(_GROUP + "WHERE id < ? ORDER BY id DESC LIMIT ?", (before_id, limit))
        return [GroupRow.from_row(r) for r in rows]

    async def named(self, prefix: str, after: tuple[str, int] | None, limit: int) -> list[GroupRow]:
        """Groups with names in [prefix, prefix + U+10FFFF), by (name, id): one range of
        groups_by_name (migration v0010); the caller keeps those that truly start with it."""
        low_name, low_id = after if after is not None else (prefix, -1)
        rows = await self._db.fetch_all(
            _GROUP + "WHERE (name > ? OR (name = ? AND id > ?)) AND name < ? ORDER BY name, id LIMIT ?",
            (low_name, low_name, low_id, prefix + "\U0010ffff", limit))
        return [GroupRow.from_row(r) for r in rows]

    async def create(self, tx: Tx, group: GroupRow, now_ms: int) -> None:
        await tx.execute(
            "INSERT INTO groups (id, name, owner_id, announcement, join_policy, muted_all, avatar_file_id, "
            "dismissed, member_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (group.id, group.name, group.owner_id, group.announcement, group.join_policy, group.muted_all,
             group.avatar_file_id, group.dismissed, group.member_count, group.created_at, now_ms))

    async def update(self, tx: Tx, group_id: int, *, name: str, announcement: str, join_policy: str,
                     muted_all: bool, owner_id: int, dismissed: bool, now_ms: int) -> None:
        await tx.execute(
            "UPDATE groups SET name = ?, announcement = ?, join_policy = ?, muted_all = ?, owner_id = ?, "
            "dismissed = ?, updated_at = ? WHERE id = ?",
            (name, announcement, join_policy, muted_all, owner_id, dismissed, now_ms, group_id))

    async def members(self, group_id: int, *, active_only: bool = True) -> list[MemberRow]:
        where = "WHERE group_id = ? AND active = TRUE" if active_only else "WHERE group_id = ?"
        rows = await self._db.fetch_all(_MEMBER + where + " ORDER BY joined_at, user_id", (group_id,))
        return [MemberRow.from_row(r) for r in rows]

    async def member(self, group_id: int, user_id: int) -> MemberRow | None:
        row = await self._db.fetch_one(_MEMBER + "WHERE group_id = ? AND user_id = ?", (group_id, user_id))
        return MemberRow.from_row(row) if row else None

    async def add_members(self, tx: Tx, group_id: int, members: Sequence[tuple[int, str]], now_ms: int) -> None:
        """Add (user_id, role) pairs, re-activating former members; keeps member_count right."""
        await tx.executemany(
            "INSERT INTO group_members (group_id, user_id, role, joined_at, active) VALUES (?, ?, ?, ?, TRUE) "
            "ON CONFLICT (group_id, user_id) DO UPDATE SET role = excluded.role, joined_at = excluded.joined_at, "
            "active = TRUE, muted_until = NULL",
            [(group_id, uid, role, now_ms) for uid, role in members])
        await self._recount(tx, group_id)

    async def deactivate(self, tx: Tx, group_id: int, user_id: int) -> None:
        await tx.execute("UPDATE group_members SET active = FALSE WHERE group_id = ? AND user_id = ?",
                         (group_id, user_id))
        await self._recount(tx, group_id)

    async def _recount(self, tx: Tx, group_id: int) -> None:
        await tx.execute(
            "UPDATE groups SET member_count = (SELECT COUNT(*) FROM group_members "
            "WHERE group_id = ? AND active = TRUE) WHERE id = ?", (group_id, group_id))

    async def set_member(self, tx: Tx, group_id: int, user_id: int, role: str, muted_until: int | None) -> None:
        await tx.execute("UPDATE group_members SET role = ?, muted_until = ? WHERE group_id = ? AND user_id = ?",
                         (role, muted_until, group_id, user_id))

    async def add_join_request(self, tx: Tx, request: JoinRequestRow) -> None:
        await tx.execute(
            "INSERT INTO group_join_requests (id, group_id, user_id, message, state, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (request.id, request.group_id, request.user_id, request.message, request.state, request.created_at))

    async def join_request(self, request_id: int) -> JoinRequestRow | None:
        row = await self._db.fetch_one(_JOIN + "WHERE id = ?", (request_id,))
        return JoinRequestRow.from_row(row) if row else None

    async def pending_join(self, group_id: int, user_id: int) -> JoinRequestRow | None:
        row = await self._db.fetch_one(
            _JOIN + "WHERE group_id = ? AND state = 'pending' AND user_id = ?", (group_id, user_id))
        return JoinRequestRow.from_row(row) if row else None

    async def join_requests(self, group_id: int, before_id: int, limit: int) -> list[JoinRequestRow]:
        rows = await self._db.fetch_all(
            _JOIN + "WHERE group_id = ? AND state = 'pending' AND id < ? ORDER BY id DESC LIMIT ?",
            (group_id, before_id, limit))
        return [JoinRequestRow.from_row(r) for r in rows]

    async def set_join_state(self, tx: Tx, request_id: int, state: str) -> None:
        await tx.execute("UPDATE group_join_requests SET state = ? WHERE id = ?", (state, request_id))

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) AS n FROM groups")
        return int(row["n"]) if row else 0
