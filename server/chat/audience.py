"""Who may post to and read a conversation, and who receives its messages.

Direct conversations need no lookup beyond the two users; groups are answered by the group
policy that the groups feature installs (until then every `g:` id is unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..errors import LuckyError, not_found, validation_failed
from ..storage.stores.users import UserStore
from .model import DIRECT, ConversationRef


class GroupPolicy(Protocol):
    async def can_read(self, user_id: int, group_id: int) -> bool: ...

    async def check_post(self, user_id: int, group_id: int, kind: str, body: dict[str, object]) -> None:
        """Raise LuckyError unless the user may post this now."""

    def members(self, group_id: int) -> Sequence[int]: ...


class Audience:
    def __init__(self, users: UserStore) -> None:
        self._users = users
        self._usable: dict[int, bool] = {}
        self.groups: GroupPolicy | None = None

    def forget_user(self, user_id: int) -> None:
        """Call when a user is disabled or enabled."""
        self._usable.pop(user_id, None)

    async def user_usable(self, user_id: int) -> bool:
        usable = self._usable.get(user_id)
        if usable is None:
            user = await self._users.by_id(user_id)
            usable = user is not None and not user.disabled
            self._usable[user_id] = usable
        return usable

    async def direct_to(self, sender_id: int, to_id: int) -> ConversationRef:
        if to_id == sender_id:
            raise validation_failed("to", "another user's id (messages to yourself are not supported)")
        if not await self.user_usable(to_id):
            raise not_found("No user has that id.")
        return ConversationRef.direct(sender_id, to_id)

    async def check_read(self, user_id: int, ref: ConversationRef) -> None:
        """404 unless the user belongs to the conversation (outsiders learn nothing)."""
        if ref.kind == DIRECT:
            if user_id not in ref.user_ids:
                raise not_found("No such conversation.")
            return
        if self.groups is None or ref.group_id is None or not await self.groups.can_read(user_id, ref.group_id):
            raise LuckyError(403, "forbidden", "You are not a member of this group.") if self.groups else not_found(
                "No such conversation.")

    async def check_post(self, user_id: int, ref: ConversationRef, kind: str, body: dict[str, object]) -> None:
        if ref.kind == DIRECT:
            await self.check_read(user_id, ref)
            if not await self.user_usable(ref.peer_of(user_id)):
                raise LuckyError(403, "forbidden", "That account is disabled; the message was not sent.")
            return
        if self.groups is None or ref.group_id is None:
            raise not_found("No such group.")
        await self.groups.check_post(user_id, ref.group_id, kind, body)

    def members(self, ref: ConversationRef) -> Sequence[int]:
        if ref.kind == DIRECT:
            return ref.user_ids
        if self.groups is None or ref.group_id is None:
            return ()
        return self.groups.members(ref.group_id)
