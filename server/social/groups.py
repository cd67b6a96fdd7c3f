"""Groups: creation, settings, roles, membership, join requests, dismissal.

Every change is stored together with a `system` message in the group's conversation (the
message's effect runs in the same transaction), so offline members learn it by `sync`.
The `GroupPolicy` of chat (who may post and who receives, answered from a per-group cache
that is reloaded after each change) is `GroupRules`, built first; `GroupService` makes the
changes, posting their system messages through the chat service (`SystemPoster`). So chat
needs only the rules and groups need chat: no cycle, every collaborator a constructor argument.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .. import cursors
from ..bus import RESYNC, Bus
from ..chat.model import ConversationRef, Message
from ..clock import Clock
from ..config import ChatConfig
from ..errors import LuckyError, conflict, forbidden, not_found, validation_failed
from ..ids import MAX_ID, Snowflake, parse_id
from ..storage import Database, Tx
from ..storage.stores.conversations import ConversationStore
from ..storage.stores.groups import GroupRow, GroupStore, JoinRequestRow, MemberRow
from ..storage.stores.users import UserRecord, UserStore

log = logging.getLogger(__name__)

OWNER, ADMIN, MEMBER = "owner", "admin", "member"
JOIN_POLICIES = ("open", "approval", "invite_only")
GROUP = "group"  # the bus topic of a group's change: {"group_id", "node"} (the other nodes drop their copy)
MAX_NAME, MAX_ANNOUNCEMENT = 64, 2000
MEMBERS_CURSOR = "group_members"  # the tag of the member list's cursors (server/cursors.py)
REQUESTS_CURSOR = "group_requests"  # ...and of the join requests'
_RANK = {OWNER: 2, ADMIN: 1, MEMBER: 0}


@dataclass
class GroupState:
    group: GroupRow
    members: dict[int, MemberRow] = field(default_factory=dict)  # active members only
    ordered: tuple[int, ...] = ()

    def role(self, user_id: int) -> str | None:
        member = self.members.get(user_id)
        return member.role if member else None

    # New states with one change applied, for the cache between a change's commit and its
    # reload (the store orders members by joined_at, then user id; so do these).

    @staticmethod
    def of(group: GroupRow, members: dict[int, MemberRow]) -> GroupState:
        ordered = tuple(m.user_id for m in sorted(members.values(), key=lambda m: (m.joined_at, m.user_id)))
        return GroupState(replace(group, member_count=len(members)), members, ordered)

    def with_members(self, *rows: MemberRow) -> GroupState:
        return GroupState.of(self.group, {**self.members, **{m.user_id: m for m in rows}})

    def without(self, user_id: int) -> GroupState:
        return GroupState.of(self.group, {uid: m for uid, m in self.members.items() if uid != user_id})

    def with_group(self, **changes: Any) -> GroupState:
        return GroupState(replace(self.group, **changes), self.members, self.ordered)


def conversation_of(group_id: int) -> ConversationRef:
    return ConversationRef(f"g:{group_id}", "group", group_id=group_id)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise validation_failed("name", f"1 to {MAX_NAME} characters")
    return name


class SystemPoster(Protocol):
    """What groups need of chat: storing a `system` message with its effect (`ChatService`)."""

    async def post_system(self, actor_id: int, ref: ConversationRef, body: dict[str, Any], *,
                          effect: Any = None, also_notify: Sequence[int] = (),
                          on_dispatched: Callable[[Message], None] | None = None) -> Message:
        """Store the message (and its effect, atomically); return it once durable."""


class GroupRules:
    """The groups' cache and the `GroupPolicy` of chat; built before chat, needs no chat.

    A change made on this node reloads the group here, then tells the other nodes (the bus
    topic `group`) to drop their copy, so the next message through any node fans out to the
    members as they are now.
    """

    def __init__(self, db: Database, clock: Clock, bus: Bus) -> None:
        self._clock = clock
        self._bus = bus
        bus.on(GROUP, self._changed_elsewhere)
        bus.on(RESYNC, self._forget_all)
        self._store = GroupStore(db)
        self._states: dict[int, GroupState] = {}
        # Bumped whenever a committed change is applied to the cache, so that a reload that
        # read the database before that commit is not installed over it.
        self._versions: dict[int, int] = {}

    # --- cache -------------------------------------------------------------------------------

    async def _load(self, group_id: int) -> GroupState:
        while True:
            version = self._versions.get(group_id, 0)
            group = await self._store.group(group_id)
            if group is None:
                self._states.pop(group_id, None)
                raise not_found("No such group.")
            members = await self._store.members(group_id)
            if self._versions.get(group_id, 0) == version:
                break  # else a change committed while we read: read again
        state = GroupState(group, {m.user_id: m for m in members}, tuple(m.user_id for m in members))
        self._states[group_id] = state
        return state

    def applies(self, group_id: int, change: Callable[[GroupState], GroupState]) -> Callable[[Message], None]:
        """A hook for `post_system`: applies the change to the cache when its message is pushed.

        Fan-out reads the cache, so a change must take effect exactly at its message's seq: the
        messages stored after a removal, even in the same batch, must not reach the removed
        member, and those after an addition must reach the new one. The `reload` after the change
        then replaces this state with the database's.
        """

        def apply(message: Message) -> None:
            self._versions[group_id] = self._versions.get(group_id, 0) + 1
            state = self._states.get(group_id)
            if state is not None:
                self._states[group_id] = change(state)

        return apply

    async def state(self, group_id: int) -> GroupState:
        return self._states.get(group_id) or await self._load(group_id)

    async def reload(self, group_id: int) -> GroupState:
        """Read the group again after a change, replacing what `applies` installed; the other
        nodes drop their copy."""
        try:
            return await self._load(group_id)
        finally:
            await self._bus.broadcast(GROUP, {"group_id": group_id, "node": self._bus.instance})

    async def _changed_elsewhere(self, payload: dict[str, Any]) -> None:
        if payload["node"] == self._bus.instance:
            return  # reloaded here already
        group_id = int(payload["group_id"])
        # Dropped, not re-read: the next send loads it, and the bumped version keeps a read
        # that started before this change from installing the old state.
        self._versions[group_id] = self._versions.get(group_id, 0) + 1
        self._states.pop(group_id, None)

    async def _forget_all(self, payload: dict[str, Any]) -> None:
        """Back on the bus after an outage: any group may have changed unheard."""
        for group_id in self._states:
            self._versions[group_id] = self._versions.get(group_id, 0) + 1
        self._states.clear()

    # --- GroupPolicy (used by chat) ----------------------------------------------------------------

    async def prepare(self, group_id: int) -> None:
        try:
            await self.state(group_id)
        except LuckyError:
            pass

    def members(self, group_id: int) -> Sequence[int]:
        state = self._states.get(group_id)
        return state.ordered if state else ()

    async def was_member(self, user_id: int, group_id: int) -> bool:
        state = await self.state(group_id)
        if user_id in state.members:
            return True
        return await self._store.member(group_id, user_id) is not None

    async def can_moderate(self, user_id: int, group_id: int) -> bool:
        state = await self.state(group_id)
        return state.role(user_id) in (OWNER, ADMIN)

    @staticmethod
    def _active_member(state: GroupState, user_id: int) -> MemberRow:
        """The rule of who acts on a group's conversation (send, edit, recall, read, typing):
        a current member of a group not dismissed. Former members keep reading, not acting."""
        if state.group.dismissed:
            raise forbidden("This group was dismissed; nothing in its conversation changes any more.")
        member = state.members.get(user_id)
        if member is None:
            raise forbidden("You are not a member of this group.")
        return member

    async def check_active(self, user_id: int, group_id: int) -> None:
        self._active_member(await self.state(group_id), user_id)

    async def check_post(self, user_id: int, group_id: int, kind: str, body: dict[str, Any]) -> None:
        state = await self.state(group_id)
        member = self._active_member(state, user_id)
        if member.muted_until is not None and member.muted_until > self._clock.now_ms():
            raise forbidden("You are muted in this group for now.")
        if state.group.muted_all and member.role == MEMBER:
            raise forbidden("Only admins may speak while the group is muted.")
        if kind == "text":
            for mentioned in body.get("mentions", ()):
                if int(mentioned) not in state.members:
                    raise validation_failed("body.mentions", "only members of the group can be mentioned")
            if body.get("mention_all") and member.role == MEMBER:
                raise forbidden("Only the owner and admins may mention everyone.")


class GroupService:
    """Creating and changing groups; reading them (members, the CLI's operator views)."""

    def __init__(self, db: Database, config: ChatConfig, clock: Clock, ids: Snowflake, rules: GroupRules,
                 chat: SystemPoster) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._ids = ids
        self._rules = rules
        self._chat = chat
        self._store = GroupStore(db)
        self._users = UserStore(db)
        self._conversations = ConversationStore(db)

    async def state(self, group_id: int) -> GroupState:
        return await self._rules.state(group_id)

    async def was_member(self, user_id: int, group_id: int) -> bool:
        return await self._rules.was_member(user_id, group_id)

    # --- reading -----------------------------------------------------------------------------------

    async def get(self, group_id: int) -> GroupRow:
        return (await self.state(group_id)).group

    async def mine(self, user_id: int) -> list[GroupRow]:
        return await self._store.groups_of(user_id)

    async def member_list(self, user_id: int, group_id: int, cursor: str | None = None,
                          limit: int = 50) -> tuple[list[MemberRow], str | None]:
        """One page of the active members, by (joined_at, user id), and the next page's cursor."""
        state = await self.state(group_id)
        if user_id not in state.members and not (state.group.dismissed and await self.was_member(user_id, group_id)):
            raise forbidden("Only members see a group's members.")
        return await self.member_page(group_id, cursor, limit)

    async def member_page(self, group_id: int, cursor: str | None = None,
                          limit: int = 50) -> tuple[list[MemberRow], str | None]:
        """`member_list` without asking who reads it: for operators (the console)."""
        after = cursors.decode_cursor(cursor, MEMBERS_CURSOR, int, int) if cursor else None
        state = await self.state(group_id)
        rows = [state.members[uid] for uid in state.ordered]  # ordered by (joined_at, user id)
        start = 0
        if after is not None:
            start = bisect.bisect_right([(m.joined_at, m.user_id) for m in rows], (after[0], after[1]))
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        last = page[-1] if page else None
        return page, cursors.encode_cursor(MEMBERS_CURSOR, last.joined_at, last.user_id) if more and last else None

    def _require_role(self, state: GroupState, user_id: int, *roles: str) -> str:
        role = state.role(user_id)
        if role is None:
            raise forbidden("You are not a member of this group.")
        if role not in roles:
            raise forbidden(f"Only the group's {' or '.join(roles)} may do this.")
        return role

    @staticmethod
    def _require_live(state: GroupState) -> None:
        if state.group.dismissed:
            raise forbidden("This group was dismissed.")

    # --- changes -------------------------------------------------------------------------------------

    async def _post(self, actor_id: int, group_id: int, event: str, effect: Any, *,
                    also_notify: Sequence[int] = (), change: Callable[[GroupState], GroupState] | None = None,
                    **fields: Any) -> Message:
        body = {"event": event, "actor_id": str(actor_id), **fields}
        return await self._chat.post_system(actor_id, conversation_of(group_id), body, effect=effect,
                                            also_notify=also_notify,
                                            on_dispatched=self._rules.applies(group_id, change) if change else None)

    def _check_id_count(self, user_ids: Sequence[Any], field_name: str) -> None:
        """At most `chat.max_group_members` ids in one call (duplicates counted): checked
        before any other work, so a huge list costs nothing but this refusal."""
        cap = self._config.max_group_members
        if len(user_ids) > cap:
            raise validation_failed(field_name, f"at most {cap} user ids in one call")

    async def _usable_users(self, user_ids: Sequence[Any], field_name: str) -> list[int]:
        """The ids, once each in the order given, of users that exist and are not disabled
        (422 naming the others); the caller has checked their count (`_check_id_count`)."""
        unique: dict[int, None] = {}  # a set that keeps the order given: linear, not quadratic
        for raw in user_ids:
            uid = parse_id(raw)
            if uid is None:
                raise validation_failed(field_name, "a list of user ids")
            unique[uid] = None
        ids = list(unique)
        found = await self._users.by_ids(ids)
        missing = [str(uid) for uid in ids if uid not in found or found[uid].disabled]
        if missing:
            raise LuckyError(404, "not_found", "Some users do not exist.", {"field": field_name, "ids": missing})
        return ids

    async def create(self, owner_id: int, name: str, member_ids: Sequence[Any],
                     avatar: Callable[[], Awaitable[int]] | None = None) -> GroupRow:
        """Create a group; `avatar` makes its avatar image (a new file: see
        `FileService.make_avatar`) once everything else is known to be right."""
        name = _check_name(name)
        self._check_id_count(member_ids, "member_ids")
        ids = [uid for uid in await self._usable_users(member_ids, "member_ids") if uid != owner_id]
        if len(ids) + 1 > self._config.max_group_members:
            raise validation_failed("member_ids", f"a group holds at most {self._config.max_group_members} members")
        avatar_file_id = await avatar() if avatar is not None else None
        now = self._clock.now_ms()
        group = GroupRow(self._ids.next_id(), name, owner_id, "", "open", False, avatar_file_id, False, 0, now)

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.create(tx, group, now)
            await self._store.add_members(tx, group.id, [(owner_id, OWNER)] + [(uid, MEMBER) for uid in ids], now)
            await self._conversations.join(tx, message.conversation_id, [owner_id, *ids], now)

        await self._post(owner_id, group.id, "group.created", effect, also_notify=[owner_id, *ids],
                         target_ids=[str(uid) for uid in ids], name=name)
        return (await self._rules.reload(group.id)).group

    async def update(self, user_id: int, group_id: int, *, name: str | None = None,
                     announcement: str | None = None, join_policy: str | None = None,
                     muted_all: bool | None = None) -> GroupRow:
        state = await self.state(group_id)
        self._require_live(state)
        self._require_role(state, user_id, OWNER, ADMIN)
        g = state.group
        changes: list[tuple[str, dict[str, Any]]] = []
        new_name, new_announcement, new_policy, new_muted = g.name, g.announcement, g.join_policy, g.muted_all
        if name is not None and _check_name(name) != g.name:
            new_name = _check_name(name)
            changes.append(("group.renamed", {"name": new_name}))
        if announcement is not None and announcement != g.announcement:
            if len(announcement) > MAX_ANNOUNCEMENT:
                raise validation_failed("announcement", f"at most {MAX_ANNOUNCEMENT} characters")
            new_announcement = announcement
            changes.append(("group.announcement", {"announcement": announcement}))
        if join_policy is not None and join_policy != g.join_policy:
            if join_policy not in JOIN_POLICIES:
                raise validation_failed("join_policy", f"one of {', '.join(JOIN_POLICIES)}")
            new_policy = join_policy
            changes.append(("group.join_policy", {"join_policy": join_policy}))
        if muted_all is not None and muted_all != g.muted_all:
            new_muted = muted_all
            changes.append(("group.muted", {"muted_all": muted_all}))
        if not changes:
            return g
        now = self._clock.now_ms()

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.update(tx, group_id, name=new_name, announcement=new_announcement,
                                     join_policy=new_policy, muted_all=new_muted, owner_id=g.owner_id,
                                     dismissed=False, now_ms=now)

        def change(s: GroupState) -> GroupState:
            return s.with_group(name=new_name, announcement=new_announcement, join_policy=new_policy,
                                muted_all=new_muted)

        # One change, one system message; the row update rides on the first of them.
        first = True
        for event, fields in changes:
            await self._post(user_id, group_id, event, effect if first else None,
                             change=change if first else None, **fields)
            first = False
        return (await self._rules.reload(group_id)).group

    async def dismiss(self, user_id: int, group_id: int, *, as_operator: bool = False) -> None:
        """Dismiss a group: by its owner, or by an operator (an admin in the console, then
        named as the system message's actor) with `as_operator`."""
        state = await self.state(group_id)
        self._require_live(state)
        if not as_operator:
            self._require_role(state, user_id, OWNER)
        g = state.group
        now = self._clock.now_ms()

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.update(tx, group_id, name=g.name, announcement=g.announcement,
                                     join_policy=g.join_policy, muted_all=g.muted_all, owner_id=g.owner_id,
                                     dismissed=True, now_ms=now)

        await self._post(user_id, group_id, "group.dismissed", effect,
                         change=lambda s: s.with_group(dismissed=True))
        await self._rules.reload(group_id)

    async def invite(self, user_id: int, group_id: int, user_ids: Sequence[Any]) -> list[MemberRow]:
        self._check_id_count(user_ids, "user_ids")
        state = await self.state(group_id)
        self._require_live(state)
        role = self._require_role(state, user_id, OWNER, ADMIN, MEMBER)
        if role == MEMBER and state.group.join_policy != "open":
            raise forbidden("Only admins may add members to this group.")
        ids = [uid for uid in await self._usable_users(user_ids, "user_ids") if uid not in state.members]
        if not ids:
            raise conflict("They are members already.")
        await self._add(user_id, state, ids)
        new_state = await self._rules.reload(group_id)
        return [new_state.members[uid] for uid in ids if uid in new_state.members]

    async def _add(self, actor_id: int, state: GroupState, ids: list[int]) -> None:
        if len(state.members) + len(ids) > self._config.max_group_members:
            raise LuckyError(409, "conflict", f"A group holds at most {self._config.max_group_members} members.")
        group_id = state.group.id
        now = self._clock.now_ms()

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.add_members(tx, group_id, [(uid, MEMBER) for uid in ids], now)
            await self._conversations.join(tx, message.conversation_id, ids, now)

        rows = [MemberRow(group_id, uid, MEMBER, None, now, True) for uid in ids]
        await self._post(actor_id, group_id, "group.member_added", effect, also_notify=ids,
                         change=lambda s: s.with_members(*rows), target_ids=[str(uid) for uid in ids])

    async def join(self, user_id: int, group_id: int, message: str = "") -> tuple[str, MemberRow | JoinRequestRow]:
        """('member', the member) under open, ('request', the request) under approval."""
        state = await self.state(group_id)
        self._require_live(state)
        if user_id in state.members:
            raise conflict("You are a member already.")
        policy = state.group.join_policy
        if policy == "invite_only":
            raise forbidden("This group is invite only: ask a member to add you.")
        if policy == "open":
            await self._add(user_id, state, [user_id])
            return "member", (await self._rules.reload(group_id)).members[user_id]
        existing = await self._store.pending_join(group_id, user_id)
        if existing is not None:
            return "request", existing
        request = JoinRequestRow(self._ids.next_id(), group_id, user_id, message[:200], "pending",
                                 self._clock.now_ms())
        await self._db.transaction("group_join_request", lambda tx: self._store.add_join_request(tx, request))
        return "request", request

    async def join_requests(self, user_id: int, group_id: int, cursor: str | None = None,
                            limit: int = 50) -> tuple[list[JoinRequestRow], str | None]:
        """One page of the pending join requests, newest first, and the next page's cursor
        (owners and admins only)."""
        before_id = cursors.int_cursor(cursor, REQUESTS_CURSOR, MAX_ID)
        state = await self.state(group_id)
        self._require_role(state, user_id, OWNER, ADMIN)
        rows = await self._store.join_requests(group_id, before_id, limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return page, cursors.encode_cursor(REQUESTS_CURSOR, page[-1].id) if more and page else None

    async def answer_request(self, user_id: int, group_id: int, request_id: int, accept: bool) -> JoinRequestRow:
        state = await self.state(group_id)
        self._require_live(state)
        self._require_role(state, user_id, OWNER, ADMIN)
        request = await self._store.join_request(request_id)
        if request is None or request.group_id != group_id:
            raise not_found("No such join request.")
        if request.state != "pending":
            raise conflict(f"This request was {request.state} already.")
        new_state = "accepted" if accept else "rejected"
        if accept and request.user_id not in state.members:
            await self._add(user_id, state, [request.user_id])
            await self._rules.reload(group_id)
        await self._db.transaction("group_join_answer", lambda tx: self._store.set_join_state(tx, request_id, new_state))
        return JoinRequestRow(request.id, request.group_id, request.user_id, request.message, new_state,
                              request.created_at)

    async def remove(self, user_id: int, group_id: int, target_id: int) -> None:
        """Kick `target_id` (owner, or an admin kicking a plain member), or leave when it is the caller."""
        state = await self.state(group_id)
        self._require_live(state)
        actor_role = self._require_role(state, user_id, OWNER, ADMIN, MEMBER)
        target = state.members.get(target_id)
        if target is None:
            raise not_found("That user is not a member of this group.")
        if target_id == user_id:
            if actor_role == OWNER:
                raise conflict("The owner cannot leave: transfer the group first, or dismiss it.")
            event = "group.member_left"
        else:
            if _RANK[actor_role] <= _RANK[target.role]:
                raise forbidden("You may remove only members below your role.")
            event = "group.member_removed"

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.deactivate(tx, group_id, target_id)
            await self._conversations.leave(tx, message.conversation_id, target_id, message.seq)

        await self._post(user_id, group_id, event, effect, change=lambda s: s.without(target_id),
                         target_ids=[str(target_id)])
        await self._rules.reload(group_id)

    async def set_member(self, user_id: int, group_id: int, target_id: int, *, role: str | None = None,
                         muted_until: int | None = None, mute_given: bool = False) -> MemberRow:
        state = await self.state(group_id)
        self._require_live(state)
        actor_role = self._require_role(state, user_id, OWNER, ADMIN)
        target = state.members.get(target_id)
        if target is None:
            raise not_found("That user is not a member of this group.")
        new_role, new_mute = target.role, target.muted_until
        events: list[tuple[str, dict[str, Any]]] = []
        if role is not None and role != target.role:
            if role not in (ADMIN, MEMBER):
                raise validation_failed("role", "admin or member (use transfer for the owner)")
            if actor_role != OWNER:
                raise forbidden("Only the owner changes roles.")
            if target.role == OWNER:
                # Demoting the owner would leave the group without one: ownership moves by transfer.
                raise forbidden("The owner's role changes only by transferring the group.")
            new_role = role
            events.append(("group.role_changed", {"role": role}))
        if mute_given:
            if _RANK[actor_role] <= _RANK[target.role]:
                raise forbidden("You may mute only members below your role.")
            new_mute = muted_until
            events.append(("group.muted", {"muted_until": muted_until}))
        if not events:
            return target

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.set_member(tx, group_id, target_id, new_role, new_mute)

        changed = replace(target, role=new_role, muted_until=new_mute)
        first = True
        for event, fields in events:
            await self._post(user_id, group_id, event, effect if first else None, target_ids=[str(target_id)],
                             change=(lambda s: s.with_members(changed)) if first else None, **fields)
            first = False
        return (await self._rules.reload(group_id)).members[target_id]

    async def transfer(self, user_id: int, group_id: int, target_id: int) -> GroupRow:
        state = await self.state(group_id)
        self._require_live(state)
        self._require_role(state, user_id, OWNER)
        if target_id not in state.members or target_id == user_id:
            raise validation_failed("user_id", "another member of the group")
        g = state.group
        now = self._clock.now_ms()

        async def effect(tx: Tx, message: Message) -> None:
            await self._store.update(tx, group_id, name=g.name, announcement=g.announcement,
                                     join_policy=g.join_policy, muted_all=g.muted_all, owner_id=target_id,
                                     dismissed=False, now_ms=now)
            await self._store.set_member(tx, group_id, target_id, OWNER, None)
            await self._store.set_member(tx, group_id, user_id, ADMIN, state.members[user_id].muted_until)

        def change(s: GroupState) -> GroupState:
            old, new = s.members.get(user_id), s.members.get(target_id)
            rows = [replace(m, role=role) for m, role in ((old, ADMIN), (new, OWNER)) if m is not None]
            return s.with_members(*rows).with_group(owner_id=target_id)

        await self._post(user_id, group_id, "group.owner_changed", effect, change=change,
                         target_ids=[str(target_id)])
        return (await self._rules.reload(group_id)).group

    # --- operators' views (the CLI: `lucky group list|show`) ----------------------------------------

    async def all_groups(self, before_id: int, limit: int) -> list[GroupRow]:
        """Groups, newest first, with ids below `before_id` (dismissed ones included)."""
        return await self._store.all_groups(before_id, limit)

    async def named(self, prefix: str, after: tuple[str, int] | None, limit: int) -> list[GroupRow]:
        """Groups whose name starts with `prefix` (case-sensitive), by (name, id), after `after`."""
        if not prefix or any(ord(c) < 32 for c in prefix) or len(prefix) > 200:
            return []  # no group name holds a control character (and PostgreSQL refuses a NUL)
        return [g for g in await self._store.named(prefix, after, limit) if g.name.startswith(prefix)]

    async def describe(self, group_id: int) -> tuple[GroupRow, list[tuple[MemberRow, UserRecord]]]:
        """A group and its active members with their accounts, read from the database."""
        group = await self._store.group(group_id)
        if group is None:
            raise not_found(f"No group has id {group_id}.")
        members = await self._store.members(group_id)
        users = await self._users.by_ids([m.user_id for m in members])
        return group, [(m, users[m.user_id]) for m in members if m.user_id in users]

    async def usernames(self, user_ids: list[int]) -> dict[int, str]:
        users = await self._users.by_ids(user_ids)
        return {uid: u.username for uid, u in users.items()}
