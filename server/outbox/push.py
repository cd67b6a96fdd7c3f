"""Offline push, planned in the send writer's transaction (PROTOCOL.md, "Offline push").

For each message a batch stores, every recipient (each member but the sender) that has no
connected device gets a notification, unless the conversation is muted for them and they
are not mentioned. `system` messages (group changes, call records) notify no one: they are
the server's bookkeeping, which a phone should not ring for (docs/protocol.md).

The notification is written as a `deliveries` row in the same transaction as its message, its
JSON body serialized once and stored: a crash after the commit cannot lose it, and every
attempt posts the same bytes under the same `delivery_id`. The batch reads the recipients'
read cursors and muted flags, and the senders' profiles, only when someone is offline: with
everyone online the batch runs no statement more than with push off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ..chat.model import ConversationRef, Message
from ..chat.writer import PendingSend
from ..config import PushConfig
from ..ids import Snowflake
from ..storage import Tx
from ..storage.stores.outbox import DeliveryStore, Sender
from ..users.service import user_object
from .presence import Presence

PUSH = "push"  # the deliveries' kind for offline push
PREVIEW_CHARS = 100


class PushPlanner:
    """A `BatchHook` of the send writer: writes the offline-push deliveries of each batch."""

    def __init__(self, config: PushConfig, public_url: str, ids: Snowflake, presence: Presence,
                 members: Callable[[ConversationRef], Sequence[int]], store: DeliveryStore,
                 on_planned: Callable[[], None]) -> None:
        """`members` answers a conversation's current members from memory; `on_planned` is
        called after a commit that wrote deliveries (it wakes the sender)."""
        self._include_preview = config.include_preview
        self._public_url = public_url
        self._ids = ids
        self._presence = presence
        self._members = members
        self._store = store
        self._on_planned = on_planned
        self._planned = False

    async def in_transaction(self, tx: Tx, created: Sequence[tuple[Message, PendingSend]], now_ms: int) -> None:
        self._planned = False
        offline: list[tuple[Message, PendingSend, list[int]]] = []
        for message, pending in created:
            if message.kind == "system":
                continue
            away = [uid for uid in self._members(pending.conversation)
                    if uid != message.sender_id and not self._presence.is_online(uid)]
            if away:
                offline.append((message, pending, away))
        if not offline:
            return
        targets = await self._store.targets(tx, sorted({m.conversation_id for m, _, _ in offline}))
        notify: list[tuple[Message, int, int]] = []  # (message, recipient, unread)
        for message, pending, away in offline:
            mentioned = set(pending.mentions)
            for uid in away:
                target = targets.get((message.conversation_id, uid))
                if target is not None and (not target.muted or uid in mentioned):
                    notify.append((message, uid, max(0, message.seq - target.read_seq)))
        if not notify:
            return
        senders = await self._store.senders(tx, sorted({m.sender_id for m, _, _ in notify}))
        rows: list[tuple[int, str, str]] = []
        for message, uid, unread in notify:
            delivery_id = self._ids.next_id()
            rows.append((delivery_id, PUSH, self._payload(delivery_id, uid, message, senders[message.sender_id],
                                                           unread)))
        if rows:
            await self._store.add(tx, rows, now_ms)
            self._planned = True

    def committed(self) -> None:
        if self._planned:
            self._planned = False
            self._on_planned()

    def _payload(self, delivery_id: int, user_id: int, message: Message, sender: Sender, unread: int) -> str:
        body: dict[str, Any] = {
            "event": "message",
            "delivery_id": str(delivery_id),
            "user_id": str(user_id),
            "conversation_id": message.conversation_id,
            "message_id": str(message.id),
            "seq": message.seq,
            "sender": user_object(sender, self._public_url),
            "kind": message.kind,
            "unread": unread,
            "created_at": message.created_at,
        }
        if self._include_preview and message.kind == "text":
            body["preview"] = str(message.body.get("text", ""))[:PREVIEW_CHARS]
        return orjson.dumps(body).decode()
