"""Who may post to and read a conversation, and who receives its messages.

Direct conversations need no lookup beyond the two users plus the blocks and friendship
rules of the `DirectPolicy` (the friends service); groups are answered by the `GroupPolicy`
(the groups' rules). Both are required constructor arguments: an audience without one of
them is a type error, not a silent pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import LuckyError, not_found, validation_failed
from ..storage import Database, Tx
from ..storage.stores.conversations import ConversationStore
from ..storage.stores.users import UserStore
from .model import DIRECT, ConversationRef, Message

DIRECT_ROUTES_MAX = 100_000  # remembered sender-peer pairs (~200 bytes each) before starting over


class DirectPolicy(Protocol):
    @property
    def changes(self) -> int:
        """A count that moves whenever an answer of `check_direct` may have changed."""

    async def check_direct(self, sender_id: int, peer_id: int) -> None:
        """Raise LuckyError unless `sender_id` may message `peer_id` (blocks, friendship)."""


class GroupPolicy(Protocol):
    async def prepare(self, group_id: int) -> None:
        """Load what `members` needs, so that it can answer without waiting."""

    async def was_member(self, user_id: int, group_id: int) -> bool:
        """Whether the user is or ever was a member (former members read up to their leaving)."""

    async def check_post(self, user_id: int, group_id: int, kind: str, body: dict[str, Any]) -> None:
        """Raise LuckyError unless the user may post this now."""

    def members(self, group_id: int) -> Sequence[int]:
        """The active members, from memory (after `prepare`)."""

    async def can_moderate(self, user_id: int, group_id: int) -> bool:
        """Whether the user is the group's owner or an admin (recalls any message)."""

    async def check_active(self, user_id: int, group_id: int) -> None:
        """Raise LuckyError (403) unless the user is a current member of a group not dismissed."""


class FilePolicy(Protocol):
    async def check_attach(self, user_id: int, file_id: int) -> None:
        """Raise LuckyError unless the file exists and the user may read it."""

    async def attached(self, tx: Tx, message: Message) -> None:
        """Record, in the message's own transaction, that its conversation holds the file."""


class Audience:
    def __init__(self, db: Database, direct: DirectPolicy, groups: GroupPolicy) -> None:
        self._users = UserStore(db)
        self._conversations = ConversationStore(db)
        self._usable: set[int] = set()  # users known to exist and not be disabled
        # (sender, peer) -> their conversation, for pairs that passed every check of a direct
        # send that does not depend on the message: the hot path's checks are one lookup.
        # Dropped whole when a user is disabled or enabled or a block or friendship changes
        # (`direct.changes` moved), and when it grows past DIRECT_ROUTES_MAX.
        self._direct_routes: dict[tuple[int, int], ConversationRef] = {}
        self._direct_changes = direct.changes
        self.direct = direct
        self.groups = groups

    def forget_user(self, user_id: int) -> None:
        """Call when a user is disabled or enabled."""
        self._usable.discard(user_id)
        self._direct_routes.clear()

    async def direct_route(self, sender_id: int, to_id: int) -> ConversationRef:
        """The conversation of a direct send from `sender_id` to `to_id`, once every check that
        does not depend on the message passed (`direct_to`, then `check_post`'s: the peer
        usable, no block, friendship where required); the message's own are `check_direct_body`."""
        if self._direct_changes != self.direct.changes:
            self._direct_changes = self.direct.changes
            self._direct_routes.clear()
        ref = self._direct_routes.get((sender_id, to_id))
        if ref is not None:
            return ref
        ref = await self.direct_to(sender_id, to_id)
        await self._check_direct_peer(sender_id, ref)
        if len(self._direct_routes) >= DIRECT_ROUTES_MAX:
            self._direct_routes.clear()
        self._direct_routes[(sender_id, to_id)] = ref
        return ref

    async def user_usable(self, user_id: int) -> bool:
        """Whether the user exists and is not disabled.

        Only a yes is remembered. `lucky user enable` runs in another process, which cannot
        tell this one to forget, so a no (an unknown or disabled account: rare) is read from
        the database again each time rather than refusing a re-enabled user until a restart.
        """
        if user_id in self._usable:
            return True
        user = await self._users.by_id(user_id)
        usable = user is not None and not user.disabled
        if usable:
            self._usable.add(user_id)
        return usable

    async def direct_to(self, sender_id: int, to_id: int) -> ConversationRef:
        if to_id == sender_id:
            raise validation_failed("to", "another user's id (messages to yourself are not supported)")
        if not await self.user_usable(to_id):
            raise not_found("No user has that id.")
        return ConversationRef.direct(sender_id, to_id)

    async def prepare(self, ref: ConversationRef) -> None:
        if ref.kind != DIRECT and ref.group_id is not None:
            await self.groups.prepare(ref.group_id)

    async def check_read(self, user_id: int, ref: ConversationRef) -> int | None:
        """The last seq the user may read (None: all of it); 404/403 for outsiders."""
        if ref.kind == DIRECT:
            if user_id not in ref.user_ids:
                raise not_found("No such conversation.")
            return None
        if ref.group_id is None:
            raise not_found("No such conversation.")
        if not await self.groups.was_member(user_id, ref.group_id):
            raise LuckyError(403, "forbidden", "You are not a member of this group.")
        membership = await self._conversations.membership(ref.id, user_id)
        return membership.until_seq if membership is not None else None

    async def check_active(self, user_id: int, ref: ConversationRef) -> None:
        """Raise unless the user may act on the conversation now (`send`, `edit`, `recall`,
        `read`, `typing`).

        Only current members act (PROTOCOL.md, "Limits on every input"): a former member of
        a group, and anyone once the group is dismissed, get 403; their past messages stay as
        they are and stay readable (`check_read`). An outsider of a direct conversation: 404.
        """
        if ref.kind == DIRECT:
            await self.check_read(user_id, ref)
            return
        if ref.group_id is None:
            raise not_found("No such conversation.")
        await self.groups.check_active(user_id, ref.group_id)

    async def check_post(self, user_id: int, ref: ConversationRef, kind: str, body: dict[str, Any]) -> None:
        if ref.kind == DIRECT:
            await self.check_read(user_id, ref)
            self.check_direct_body(ref, kind, body)
            await self._check_direct_peer(user_id, ref)
            return
        if ref.group_id is None:
            raise not_found("No such group.")
        await self.groups.check_post(user_id, ref.group_id, kind, body)

    async def _check_direct_peer(self, user_id: int, ref: ConversationRef) -> None:
        peer = ref.peer_of(user_id)
        if not await self.user_usable(peer):
            raise LuckyError(403, "forbidden", "That account is disabled; the message was not sent.")
        await self.direct.check_direct(user_id, peer)

    @staticmethod
    def check_direct_body(ref: ConversationRef, kind: str, body: dict[str, Any]) -> None:
        """What a direct message's body may not say: mentions of anyone but the two, `mention_all`."""
        for mentioned in body.get("mentions", ()) if kind == "text" else ():
            if int(mentioned) not in ref.user_ids:
                raise validation_failed("body.mentions", "only members of the conversation can be mentioned")
        if body.get("mention_all"):
            raise validation_failed("body.mention_all", "only in groups")

    async def can_moderate(self, user_id: int, ref: ConversationRef) -> bool:
        if ref.kind == DIRECT or ref.group_id is None:
            return False
        return await self.groups.can_moderate(user_id, ref.group_id)

    def members(self, ref: ConversationRef) -> Sequence[int]:
        if ref.kind == DIRECT:
            return ref.user_ids
        if ref.group_id is None:
            return ()
        return self.groups.members(ref.group_id)
