"""Friend requests, friendships, blocks, and presence sent to friends.

Also the `DirectPolicy` of one-to-one chat: blocks and the friendship requirement are
answered from memory on the send path, loaded once per user and dropped on every change, on
every node at once (the bus topic `friends`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from .. import cursors
from ..bus import RESYNC, Bus
from ..clock import Clock
from ..config import ChatConfig
from ..errors import LuckyError, conflict, forbidden, not_found, validation_failed
from ..ids import MAX_ID, Snowflake
from ..storage import Database, Tx
from ..storage.stores.social import FriendRequestRow, SocialStore
from ..storage.stores.users import UserRecord, UserStore

log = logging.getLogger(__name__)
MAX_REQUEST_MESSAGE = 200
FRIENDS = "friends"  # the bus topic of friendship and block changes: {"user_ids": [...]}
# One empty set shared by every cached user without friends or blocks: an empty frozenset is
# 216 bytes, kept per connected user (docs/benchmarks.md, W3).
_NOBODY: frozenset[int] = frozenset()


class FriendService:
    def __init__(self, db: Database, config: ChatConfig, clock: Clock, ids: Snowflake, bus: Bus) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._ids = ids
        self._bus = bus
        self._store = SocialStore(db)
        self._users = UserStore(db)
        self._blocked_by: dict[int, frozenset[int]] = {}  # user -> whom they block
        self._friends: dict[int, frozenset[int]] = {}
        self.changes = 0  # moves with every change of friendships or blocks heard (DirectPolicy)
        bus.on(FRIENDS, self._changed_somewhere)
        bus.on(RESYNC, self._forget_all)

    # --- caches ----------------------------------------------------------------------------

    async def _blocks_of(self, user_id: int) -> frozenset[int]:
        cached = self._blocked_by.get(user_id)
        if cached is None:
            cached = frozenset(await self._store.blocks_of(user_id)) or _NOBODY
            self._blocked_by[user_id] = cached
        return cached

    async def friend_ids(self, user_id: int) -> frozenset[int]:
        cached = self._friends.get(user_id)
        if cached is None:
            cached = frozenset(await self._store.friend_ids(user_id)) or _NOBODY
            self._friends[user_id] = cached
        return cached

    async def _forget(self, *user_ids: int) -> None:
        """Drop these users' cached friends and blocks here and on every other node."""
        await self._bus.broadcast(FRIENDS, {"user_ids": list(user_ids)})

    async def _changed_somewhere(self, payload: dict[str, Any]) -> None:
        self.changes += 1
        for uid in payload["user_ids"]:
            self._friends.pop(int(uid), None)
            self._blocked_by.pop(int(uid), None)

    async def _forget_all(self, payload: dict[str, Any]) -> None:
        """Back on the bus after an outage: friendships and blocks may have changed unheard."""
        self.changes += 1
        self._friends.clear()
        self._blocked_by.clear()

    # --- the direct-chat policy ------------------------------------------------------------

    async def check_direct(self, sender_id: int, peer_id: int) -> None:
        if sender_id in await self._blocks_of(peer_id):
            raise LuckyError(403, "blocked", "This user does not accept your messages.")
        if self._config.require_friendship and peer_id not in await self.friend_ids(sender_id):
            raise forbidden("This server requires friendship for one-to-one messages: send a friend request first.")

    # --- requests ---------------------------------------------------------------------------

    async def _user(self, user_id: int) -> UserRecord:
        user = await self._users.by_id(user_id)
        if user is None or user.disabled:
            raise not_found("No user has that id.")
        return user

    async def send_request(self, from_id: int, to_id: int, message: str) -> tuple[FriendRequestRow, bool]:
        """File a request; (the request, True if new). A reverse pending request is accepted instead."""
        if to_id == from_id:
            raise validation_failed("user_id", "another user's id")
        if len(message) > MAX_REQUEST_MESSAGE:
            raise validation_failed("message", f"at most {MAX_REQUEST_MESSAGE} characters")
        await self._user(to_id)
        if from_id in await self._blocks_of(to_id):
            raise LuckyError(403, "blocked", "This user does not accept your requests.")
        if to_id in await self.friend_ids(from_id):
            raise conflict("You are friends already.")
        reverse = await self._store.pending_between(to_id, from_id)
        if reverse is not None:
            return await self.accept(from_id, reverse.id), False
        existing = await self._store.pending_between(from_id, to_id)
        if existing is not None:
            return existing, False
        request = FriendRequestRow(self._ids.next_id(), from_id, to_id, message, "pending", self._clock.now_ms())
        await self._db.transaction("friend_request", lambda tx: self._store.add_request(tx, request))
        return request, True

    async def requests(self, user_id: int, incoming: bool, cursor: str | None, limit: int) -> tuple[list[FriendRequestRow], str | None]:
        before = cursors.int_cursor(cursor, "friend_requests", MAX_ID)
        rows = await self._store.requests(user_id, incoming, before, limit + 1)
        page = rows[:limit]
        return page, cursors.encode_cursor("friend_requests", page[-1].id) if len(rows) > limit and page else None

    async def _pending_for(self, user_id: int, request_id: int) -> FriendRequestRow:
        request = await self._store.request(request_id)
        if request is None or user_id not in (request.from_id, request.to_id):
            raise not_found("No such friend request.")
        if request.to_id != user_id:
            raise forbidden("Only the user asked may answer a friend request.")
        if request.state != "pending":
            raise conflict(f"This request was {request.state} already.")
        return request

    async def accept(self, user_id: int, request_id: int) -> FriendRequestRow:
        request = await self._pending_for(user_id, request_id)
        now = self._clock.now_ms()

        async def write(tx: Tx) -> None:
            await self._store.set_request_state(tx, request.id, "accepted", now)
            await self._store.befriend(tx, request.from_id, request.to_id, now)

        await self._db.transaction("friend_accept", write)
        await self._forget(request.from_id, request.to_id)
        return FriendRequestRow(request.id, request.from_id, request.to_id, request.message, "accepted",
                                request.created_at)

    async def reject(self, user_id: int, request_id: int) -> FriendRequestRow:
        request = await self._pending_for(user_id, request_id)
        now = self._clock.now_ms()
        await self._db.transaction("friend_reject",
                                   lambda tx: self._store.set_request_state(tx, request.id, "rejected", now))
        return FriendRequestRow(request.id, request.from_id, request.to_id, request.message, "rejected",
                                request.created_at)

    # --- friends and blocks -------------------------------------------------------------------

    async def friends(self, user_id: int, cursor: str | None, limit: int) -> tuple[list[tuple[UserRecord, int]], str | None]:
        after = cursors.int_cursor(cursor, "friends", 0)
        rows = await self._store.friends(user_id, after, limit + 1)
        page = rows[:limit]
        users = await self._users.by_ids([fid for fid, _ in page])
        items = [(users[fid], since) for fid, since in page if fid in users]
        return items, cursors.encode_cursor("friends", page[-1][0]) if len(rows) > limit and page else None

    async def unfriend(self, user_id: int, other_id: int) -> None:
        removed = await self._db.transaction("unfriend", lambda tx: self._store.unfriend(tx, user_id, other_id))
        await self._forget(user_id, other_id)
        if not removed:
            raise not_found("You are not friends with that user.")

    async def block(self, user_id: int, other_id: int) -> None:
        if other_id == user_id:
            raise validation_failed("user_id", "another user's id")
        await self._user(other_id)
        await self._store.block(user_id, other_id, self._clock.now_ms())
        await self._forget(user_id)

    async def unblock(self, user_id: int, other_id: int) -> None:
        await self._store.unblock(user_id, other_id)
        await self._forget(user_id)

    async def blocks(self, user_id: int) -> list[UserRecord]:
        ids = sorted(await self._blocks_of(user_id))
        users = await self._users.by_ids(ids)
        return [users[i] for i in ids if i in users]

    # --- presence -----------------------------------------------------------------------------

    async def presence(self, user_id: int, online: bool) -> None:
        """Tell the user's friends that its first device connected or its last one left."""
        friends = await self.friend_ids(user_id)
        if friends:
            frame = orjson.dumps({"type": "presence", "user_id": str(user_id), "online": online})
            self._bus.push_event(friends, frame)

    def is_online(self, user_id: int) -> bool:
        return self._bus.is_online(user_id)
