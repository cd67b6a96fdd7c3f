"""Messages and conversation ids as the rest of the server sees them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import LuckyError
from ..ids import parse_id

log = logging.getLogger(__name__)

DIRECT = "direct"
GROUP = "group"


@dataclass(frozen=True)
class ConversationRef:
    """A parsed conversation id: `p:<a>:<b>` (a < b as strings) or `g:<group_id>`."""

    id: str
    kind: str
    user_ids: tuple[int, ...] = ()  # the two users of a direct conversation
    group_id: int | None = None

    @staticmethod
    def direct(a: int, b: int) -> ConversationRef:
        low, high = sorted((str(a), str(b)))
        return ConversationRef(f"p:{low}:{high}", DIRECT, (int(low), int(high)))

    @staticmethod
    def parse(raw: object) -> ConversationRef:
        bad = LuckyError(404, "not_found", "No such conversation: ids look like p:<user>:<user> or g:<group>.")
        if not isinstance(raw, str) or len(raw) > 64:
            raise bad
        parts = raw.split(":")
        if parts[0] == "p" and len(parts) == 3:
            a, b = parse_id(parts[1]), parse_id(parts[2])
            if a is None or b is None or a == b or parts[1] >= parts[2] or str(a) != parts[1] or str(b) != parts[2]:
                raise bad
            return ConversationRef(raw, DIRECT, (a, b))
        if parts[0] == "g" and len(parts) == 2:
            gid = parse_id(parts[1])
            if gid is None or str(gid) != parts[1]:
                raise bad
            return ConversationRef(raw, GROUP, group_id=gid)
        raise bad

    def peer_of(self, user_id: int) -> int:
        return self.user_ids[1] if self.user_ids[0] == user_id else self.user_ids[0]


@dataclass
class Message:
    id: int
    conversation_id: str
    seq: int
    sender_id: int
    kind: str
    body: dict[str, Any]
    client_msg_id: str
    created_at: int
    reply_to: int | None = None
    edited_at: int | None = None
    recalled: bool = False
    unreadable: bool = False  # served as a placeholder: see json()
    _json: bytes | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "sender_id": str(self.sender_id),
            "kind": self.kind,
            "body": {} if self.unreadable else self.body,
            "client_msg_id": self.client_msg_id,
            "created_at": self.created_at,
        }
        if self.reply_to is not None:
            data["reply_to"] = str(self.reply_to)
        if self.edited_at is not None:
            data["edited_at"] = self.edited_at
        if self.recalled:
            data["recalled"] = True
        if self.unreadable:
            data["unreadable"] = True
        return data

    def json(self) -> bytes:
        """The message object serialized once, shared by every frame that carries it.

        A message that cannot be serialized (a body stored before the limits of PROTOCOL.md
        1.1, deeper than orjson writes) is served as a placeholder, so that one bad row never
        fails a history page, a `sync` or the conversation list: see `mark_unreadable`.
        """
        if self._json is None:
            if not self.unreadable:
                try:
                    self._json = orjson.dumps(self.to_dict())
                except TypeError as exc:  # orjson.JSONEncodeError
                    self.mark_unreadable(str(exc))
            if self._json is None:
                self._json = orjson.dumps(self.to_dict())
        return self._json

    def mark_unreadable(self, reason: str) -> None:
        """Serve this message as a placeholder: same id, seq, kind and sender, an empty body and
        `"unreadable": true`. Logged each time it is read: only rows stored before the limits of
        PROTOCOL.md 1.1 can be unreadable, and the sender's edit (or a recall) mends one."""
        self.unreadable = True
        self._json = None
        log.warning("message %s (conversation %s, seq %s) cannot be served (%s): sent as a placeholder",
                    self.id, self.conversation_id, self.seq, reason)

    def invalidate(self) -> None:
        """Its body changed (an edit, a recall): serialize it again."""
        self._json = None
        self.unreadable = False


def message_frame(kind: str, message: Message) -> bytes:
    """`{"type": kind, "message": {...}}` built around the message's cached JSON."""
    return b'{"type":"' + kind.encode() + b'","message":' + message.json() + b"}"
