"""Read-only views of groups for operators (CLI and console): no chat needed to build it."""

from __future__ import annotations

from ..errors import not_found
from ..storage import Database
from ..storage.stores.groups import GroupRow, GroupStore, MemberRow
from ..storage.stores.users import UserRecord, UserStore


class GroupDirectory:
    def __init__(self, db: Database) -> None:
        self._groups = GroupStore(db)
        self._users = UserStore(db)

    async def page(self, before_id: int, limit: int) -> list[GroupRow]:
        """Groups, newest first, with ids below `before_id`."""
        return await self._groups.all_groups(before_id, limit)

    async def show(self, group_id: int) -> tuple[GroupRow, list[tuple[MemberRow, UserRecord]]]:
        group = await self._groups.group(group_id)
        if group is None:
            raise not_found(f"No group has id {group_id}.")
        members = await self._groups.members(group_id)
        users = await self._users.by_ids([m.user_id for m in members])
        return group, [(m, users[m.user_id]) for m in members if m.user_id in users]

    async def usernames(self, user_ids: list[int]) -> dict[int, str]:
        users = await self._users.by_ids(user_ids)
        return {uid: u.username for uid, u in users.items()}
