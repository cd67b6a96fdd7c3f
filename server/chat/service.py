"""The messaging rules: send, sync, history, read, typing, recall, edit, the conversation list.

Used alike by the WebSocket gateway and the HTTP routes; knows nothing of either. Sends go
through the `SendWriter` (group commit); once stored, `dispatch` pushes each message's frame,
serialized once, to every connected device of every member.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .. import cursors
from ..clock import Clock
from ..config import ChatConfig
from ..errors import LuckyError, forbidden, not_found, validation_failed
from ..ids import Snowflake, parse_id
from ..storage import Database, Tx
from ..storage.stores.conversations import ConversationStore, MembershipRow
from ..search.segment import index_text
from ..storage.stores.messages import MessageStore
from ..storage.stores.search import SearchStore
from ..storage.stores.users import UserRecord, UserStore
from ..bus import OFFLINE, Bus
from .audience import Audience, FilePolicy
from .delivery import Session, Sessions, Transport
from .kinds import MEDIA_KINDS, check_body
from .model import DIRECT, ConversationRef, Message, message_frame
from .writer import AwaitedReply, BatchHook, PendingSend, SendReply, SendWriter, message_from_row
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_CLIENT_MSG_ID = 64
SYNC_DEFAULT, SYNC_MAX = 200, 1000


@dataclass(frozen=True)
class SendRequest:
    """A send as both edges parse it: exactly one of `to`, `group_id`, `conversation_id`."""

    client_msg_id: str
    kind: str
    body: Any
    to: int | None = None
    group_id: int | None = None
    conversation_id: str | None = None
    reply_to: int | None = None


@dataclass(frozen=True)
class ConversationView:
    membership: MembershipRow
    peer: UserRecord | None
    last_message: Message | None

    @property
    def unread(self) -> int:
        return max(0, self.membership.visible_seq - self.membership.read_seq)

    @property
    def mentioned(self) -> bool:
        """Someone mentioned the user in a message not yet read."""
        return self.membership.mention_seq > self.membership.read_seq


PresenceListener = Callable[[int, bool], Awaitable[None]]  # (user id, online)


class ChatService:
    def __init__(self, db: Database, config: ChatConfig, clock: Clock, ids: Snowflake, sessions: Sessions,
                 bus: Bus, audience: Audience, files: FilePolicy, presence_listeners: Sequence[PresenceListener],
                 batch_max: int, outbox_grace_s: int, batch_hooks: Sequence[BatchHook]) -> None:
        """`sessions` are this node's sockets, `bus` every node's (pushes go through it);
        `audience` answers who may read, post and receive; `files` who may attach a file
        (media messages); `presence_listeners` hear a user's first device come and last go.
        A message not dispatched `outbox_grace_s` after its commit is left to the outbox job;
        `batch_hooks` write what else each stored batch needs (offline push)."""
        self._db = db
        self._config = config
        self._clock = clock
        self._users = UserStore(db)
        self._messages = MessageStore(db)
        self._conversations = ConversationStore(db)
        self._search = SearchStore(db)
        self.sessions = sessions
        self.bus = bus
        self.audience = audience
        self._files = files
        self.writer = SendWriter(db, ids, clock, batch_max, on_committed=self.dispatch,
                                 outbox_grace_ms=outbox_grace_s * 1000, hooks=batch_hooks)
        # Messages pushed to other nodes are done (their outbox rows end) once published.
        bus.set_published(self.writer.mark_dispatched)
        self._ids = ids
        self._sweeper: asyncio.Task[None] | None = None
        self.presence_listeners = tuple(presence_listeners)
        bus.on(OFFLINE, self._left_with_a_node)
        self.messages_delivered = 0
        self.resent = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.writer.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="chat-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
            self._sweeper = None
        await self.writer.stop()

    async def _sweep_forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            try:
                # One pass a second over a heap of expiries and over the sockets for their
                # pings, rather than timers per socket: idle sockets stay cheap, and expiry
                # follows the injected clock.
                self.sessions.kick_expired(self._clock.now_ms() // 1000)
                self.sessions.heartbeat(asyncio.get_running_loop().time(), self._config.heartbeat_s)
                await self.resend_overdue()
                if ticks % 5 == 0:
                    # An idle writer's last dispatched batch; the outbox job would else
                    # dispatch it again once its grace ran out.
                    await self.writer.flush_dispatched()
            except Exception:  # a failed sweep is retried on the next tick
                log.exception("chat sweep failed")

    # --- connections -----------------------------------------------------------------------

    async def connect(self, user_id: int, device_id: str, family_id: int, transport: Transport,
                      welcome: Callable[[Session], bytes] | None = None) -> Session:
        """Register a connected device; the user's friends hear of its first device (on any node).

        `welcome` makes the first frame: it is queued the moment the session can receive
        pushes, before anything (a group message, a presence frame) can overtake it.
        """
        first = not self.sessions.of_user(user_id)
        if first:
            # Every node routes the user here before the welcome: a message committed after the
            # device's first `sync` is pushed, one committed before is in that sync.
            await self.bus.connected(user_id)
        session = self.sessions.add(user_id, device_id, family_id, transport)
        if welcome is not None:
            transport.send(welcome(session))
        if first and len(self.sessions.of_user(user_id)) == 1 and not self.bus.online_elsewhere(user_id):
            await self._presence(user_id, True)
        return session

    async def disconnect(self, session: Session) -> None:
        self.sessions.remove(session)
        if not self.sessions.of_user(session.user_id):
            await self.bus.disconnected(session.user_id)
            if not self.bus.online_elsewhere(session.user_id):
                await self._presence(session.user_id, False)

    async def _left_with_a_node(self, payload: dict[str, Any]) -> None:
        for user_id in payload["user_ids"]:
            if not self.bus.is_online(int(user_id)):
                await self._presence(int(user_id), False)

    async def _presence(self, user_id: int, online: bool) -> None:
        for listener in self.presence_listeners:
            try:
                await listener(user_id, online)
            except Exception:  # presence is a courtesy; it must not fail a connection
                log.exception("presence listener failed for user %s", user_id)

    # --- sending -------------------------------------------------------------------------

    async def resolve_target(self, sender_id: int, request: SendRequest) -> ConversationRef:
        given = (request.to is not None) + (request.group_id is not None) + (request.conversation_id is not None)
        if given != 1:
            raise validation_failed("to", "give exactly one of to, group_id, conversation_id")
        if request.to is not None:
            return await self.audience.direct_to(sender_id, request.to)
        if request.group_id is not None:
            return ConversationRef(f"g:{request.group_id}", "group", group_id=request.group_id)
        return ConversationRef.parse(request.conversation_id)

    async def submit(self, sender_id: int, request: SendRequest, reply: SendReply,
                     origin: Session | None = None) -> None:
        """Check a send (raising what is wrong with it) and queue it; `reply` hears once the
        message is durable, or could not be stored.

        Sends from one connection are queued in the order they are submitted, so awaiting
        `submit` in order keeps a device's messages in order whenever their replies come.
        """
        cmid = request.client_msg_id
        if not cmid or len(cmid) > MAX_CLIENT_MSG_ID:
            raise validation_failed("client_msg_id", f"1 to {MAX_CLIENT_MSG_ID} characters")
        body = check_body(request.kind, request.body)
        if request.to is not None and request.group_id is None and request.conversation_id is None:
            # The common case, a direct message: its checks are remembered per sender and peer.
            ref = await self.audience.direct_route(sender_id, request.to)
            self.audience.check_direct_body(ref, request.kind, body)
        else:
            ref = await self.resolve_target(sender_id, request)
            await self.audience.check_post(sender_id, ref, request.kind, body)
        if request.reply_to is not None:
            await self._check_reply(ref, request.reply_to)
        files = self._files if request.kind in MEDIA_KINDS else None
        if files is not None:
            # The file must be one the sender can read; storing the message then lets the
            # conversation's members read it too (the reference is written with the message).
            await files.check_attach(sender_id, int(body["file_id"]))
        pending = PendingSend(ref, sender_id, request.kind, body, cmid, request.reply_to,
                              ref.user_ids if ref.kind == DIRECT else (),
                              origin=origin.id if origin is not None else None,
                              mentions=self._mentioned(sender_id, ref, request.kind, body),
                              effect=files.attached if files is not None else None, reply=reply)
        self.writer.enqueue(pending)

    def _mentioned(self, sender_id: int, ref: ConversationRef, kind: str, body: dict[str, Any]) -> tuple[int, ...]:
        if kind != "text":
            return ()
        if body.get("mention_all"):
            return tuple(m for m in self.audience.members(ref) if m != sender_id)
        mentions = body.get("mentions")
        if not mentions:  # nearly every message: no generator made
            return ()
        return tuple(int(m) for m in mentions if int(m) != sender_id)

    async def post_system(self, actor_id: int, ref: ConversationRef, body: dict[str, Any], *,
                          effect: Any = None, also_notify: Sequence[int] = (),
                          on_dispatched: Callable[[Message], None] | None = None,
                          members: Sequence[int] = ()) -> Message:
        """Store a `system` message (and its effect, atomically); returns it once durable.

        `on_dispatched` runs right after the message is pushed, before any later message is.
        `members` are ensured as the conversation's members should this be its first message
        (a call's message in a direct conversation that has none yet).
        """
        pending = PendingSend(ref, actor_id, "system", body, f"sys:{self._ids.next_id()}", None, members,
                              also_notify=also_notify, effect=effect, on_dispatched=on_dispatched)
        self.writer.enqueue(pending)
        message, _ = await pending.future
        return message

    async def send(self, sender_id: int, request: SendRequest, origin: Session | None = None) -> tuple[Message, bool]:
        """Store a message; (the message, True if new). A repeated client_msg_id gets the first.

        Returns only once the message is durable.
        """
        reply = AwaitedReply()
        await self.submit(sender_id, request, reply, origin)
        return await reply.future

    async def _check_reply(self, ref: ConversationRef, reply_to: int) -> None:
        target = await self._messages.by_id(reply_to)
        if target is None or target.conversation_id != ref.id:
            raise validation_failed("reply_to", "the id of a message in the same conversation")

    def dispatch(self, stored: list[tuple[Message, PendingSend]]) -> list[int]:
        """Push stored messages to every member's connected devices; the ids dispatched (those
        also pushed to other nodes are told to the writer once published)."""
        done = []
        for message, pending in stored:
            if self.push(message, pending.origin, pending.also_notify, pending.conversation):
                done.append(message.id)
            if pending.on_dispatched is not None:
                pending.on_dispatched(message)
        return done

    def push(self, message: Message, origin: int | None = None, also_notify: Sequence[int] = (),
             ref: ConversationRef | None = None) -> bool:
        """Queue one message's frame, serialized once, to every device of every member; False
        if pushes to other nodes are still on their way (the bus tells the writer when out)."""
        if ref is None:
            ref = ConversationRef.parse(message.conversation_id)
        frame = message_frame("message", message)
        now = self._clock.monotonic()
        recipients = self.audience.members(ref)
        if also_notify:
            members = set(recipients)
            recipients = [*recipients, *(u for u in also_notify if u not in members)]
        self.messages_delivered += 1
        return self.bus.push_message(recipients, message.conversation_id, message.seq, frame, now, origin,
                                     message.id)

    # --- acks and re-sends ------------------------------------------------------------------

    def ack(self, session: Session, conversation_id: str, seq: int) -> None:
        session.ack(conversation_id, seq)

    async def resend_overdue(self) -> int:
        """Push again what devices have not acked within `chat.ack_timeout_s`."""
        overdue = self.sessions.overdue(self._clock.monotonic(), self._config.ack_timeout_s)
        count = 0
        for item in overdue:
            rows = await self._messages.after(item.conversation_id, item.after_seq, SYNC_DEFAULT, item.upto_seq)
            for row in rows:
                item.session.transport.send(message_frame("message", message_from_row(row)))
                count += 1
        self.resent += count
        return count

    async def redispatch(self, message_id: int) -> None:
        """Dispatch a stored message again (the outbox job, for a row left pending); recipients
        deduplicate by message id, so dispatching twice is safe. A message gone is no error."""
        stored = await self._messages.by_id(message_id)
        if stored is None:
            return
        message = message_from_row(stored)
        await self.audience.prepare(ConversationRef.parse(message.conversation_id))
        if not self.push(message):
            await self.bus.drain()  # BusUnavailable keeps the row for a later retry

    # --- reading -------------------------------------------------------------------------

    async def sync(self, user_id: int, cursors: dict[str, int], limit: int = SYNC_DEFAULT) -> tuple[list[Message], bool]:
        """Every message after each cursor (from 0 for conversations not named), seq order."""
        if not 1 <= limit <= SYNC_MAX:
            raise validation_failed("limit", f"1 to {SYNC_MAX}")
        # A cursor must name one of the user's conversations: a foreign or malformed id is
        # not_found rather than silently ignored, so a client with a wrong id hears of it.
        for cid, seq in cursors.items():
            await self.audience.check_read(user_id, ConversationRef.parse(cid))
            if seq < 0:
                raise validation_failed("cursors", "each cursor a seq, 0 or more")
        memberships = sorted(await self._conversations.for_user(user_id), key=lambda m: m.conversation_id)
        out: list[Message] = []
        more = False
        for membership in memberships:
            cursor = cursors.get(membership.conversation_id, 0)
            visible = membership.visible_seq
            if visible <= cursor:
                continue
            remaining = limit - len(out)
            if remaining <= 0:
                more = True
                break
            rows = await self._messages.after(membership.conversation_id, cursor, remaining, membership.until_seq)
            out.extend(message_from_row(r) for r in rows)
            if rows and rows[-1].seq < visible and len(rows) == remaining:
                more = True
                break
        return out, more

    async def history(self, user_id: int, conversation_id: str, before_seq: int | None, after_seq: int | None,
                      limit: int) -> tuple[list[Message], bool]:
        ref = ConversationRef.parse(conversation_id)
        bound = await self.audience.check_read(user_id, ref)
        if before_seq is not None and after_seq is not None:
            raise validation_failed("before_seq", "give before_seq or after_seq, not both")
        if after_seq is not None:
            rows = await self._messages.after(ref.id, after_seq, limit + 1, bound)
            return [message_from_row(r) for r in rows[:limit]], len(rows) > limit
        last = await self._conversations.last_seq(ref.id) if bound is None else bound
        before_seq = last + 1 if before_seq is None else min(before_seq, last + 1)
        rows = await self._messages.before(ref.id, before_seq, limit + 1)
        has_more = len(rows) > limit
        return [message_from_row(r) for r in rows[-limit:]], has_more

    async def conversations(self, user_id: int, cursor: str | None, limit: int) -> tuple[list[ConversationView], str | None]:
        """The user's conversations, newest activity first."""
        # One row past the page says whether there is a next one.
        memberships = await self._conversations.page_for_user(
            user_id, limit + 1, _decode_list_cursor(cursor) if cursor else None)
        page = memberships[:limit]
        next_cursor = None
        if len(memberships) > limit and page:
            next_cursor = _encode_list_cursor(page[-1].last_message_at, page[-1].conversation_id)
        last = await self._messages.last_of([m.conversation_id for m in page])
        peers: dict[int, UserRecord] = {}
        peer_ids = [ConversationRef.parse(m.conversation_id).peer_of(user_id) for m in page if m.kind == DIRECT]
        if peer_ids:
            peers = await self._users.by_ids(peer_ids)
        views = []
        for m in page:
            peer = None
            if m.kind == DIRECT:
                peer = peers.get(ConversationRef.parse(m.conversation_id).peer_of(user_id))
            row = last.get(m.conversation_id)
            views.append(ConversationView(m, peer, message_from_row(row) if row else None))
        return views, next_cursor

    async def conversation(self, user_id: int, conversation_id: str) -> MembershipRow:
        ref = ConversationRef.parse(conversation_id)
        await self.audience.check_read(user_id, ref)
        membership = await self._conversations.membership(ref.id, user_id)
        if membership is None:
            raise not_found("This conversation has no messages yet.")
        return membership

    # --- read receipts, typing, flags ---------------------------------------------------------

    async def read(self, user_id: int, conversation_id: str, seq: int, origin: Session | None = None) -> None:
        """Move the user's read cursor and tell the other members; current members only."""
        await self.audience.check_active(user_id, ConversationRef.parse(conversation_id))
        membership = await self.conversation(user_id, conversation_id)
        if seq < 0 or seq > membership.visible_seq:
            raise validation_failed("seq", f"0 to {membership.visible_seq}, the last seq you can read")
        if seq <= membership.read_seq:
            return
        await self._db.transaction("read_cursor", lambda tx: self._conversations.advance_read(
            tx, [(seq, conversation_id, user_id)]))
        ref = ConversationRef.parse(conversation_id)
        frame = orjson.dumps({"type": "receipt", "conversation_id": conversation_id,
                              "user_id": str(user_id), "seq": seq})
        self.bus.push_event([m for m in self.audience.members(ref) if m != user_id], frame)

    async def typing(self, user_id: int, conversation_id: str, relay: bool = True) -> None:
        """Tell the other members the user is typing; current members only.

        With `relay` False (a throttled repeat) only the check runs: a member removed since
        the last relayed `typing` hears `forbidden`, not silence.
        """
        ref = ConversationRef.parse(conversation_id)
        await self.audience.check_active(user_id, ref)
        if not relay:
            return
        frame = orjson.dumps({"type": "typing", "conversation_id": conversation_id, "user_id": str(user_id)})
        self.bus.push_event([m for m in self.audience.members(ref) if m != user_id], frame)

    async def set_flags(self, user_id: int, conversation_id: str, muted: bool | None, pinned: bool | None) -> MembershipRow:
        membership = await self.conversation(user_id, conversation_id)
        await self._conversations.set_flags(
            conversation_id, user_id,
            membership.muted if muted is None else muted,
            membership.pinned if pinned is None else pinned)
        return await self.conversation(user_id, conversation_id)

    # --- recall and edit -----------------------------------------------------------------------

    async def _own_message(self, user_id: int, message_id: int) -> tuple[Message, ConversationRef]:
        row = await self._messages.by_id(message_id)
        if row is None:
            raise not_found("No such message.")
        ref = ConversationRef.parse(row.conversation_id)
        try:
            bound = await self.audience.check_read(user_id, ref)
        except LuckyError:
            raise not_found("No such message.") from None
        if bound is not None and row.seq > bound:
            raise not_found("No such message.")
        # Seen, but only current members act on it: a former member's old messages stay as
        # they are, and nothing changes in a dismissed group.
        await self.audience.check_active(user_id, ref)
        return message_from_row(row), ref

    async def recall(self, user_id: int, message_id: int) -> Message:
        message, ref = await self._own_message(user_id, message_id)
        moderator = await self.audience.can_moderate(user_id, ref)
        if message.sender_id != user_id and not moderator:
            raise forbidden("Only the sender (or a group's admins) may recall this message.")
        if message.recalled:
            return message
        now = self._clock.now_ms()
        if not moderator and now - message.created_at > self._config.recall_window_s * 1000:
            raise forbidden(f"Messages can be recalled only within {self._config.recall_window_s} s of sending.")
        return await self._update(message, ref, {}, message.edited_at, True)

    async def edit(self, user_id: int, message_id: int, body: Any) -> Message:
        message, ref = await self._own_message(user_id, message_id)
        if message.sender_id != user_id:
            raise forbidden("Only the sender may edit this message.")
        if message.recalled:
            # forbidden, not conflict: the WebSocket's error codes are the contract's short list
            raise forbidden("A recalled message cannot be edited.")
        if message.kind not in ("text", "custom", "location"):
            raise validation_failed("message_id", "only text, location and custom messages can be edited")
        clean = check_body(message.kind, body)
        return await self._update(message, ref, clean, self._clock.now_ms(), False)

    async def _update(self, message: Message, ref: ConversationRef, body: dict[str, Any], edited_at: int | None,
                      recalled: bool) -> Message:
        async def write(tx: Tx) -> None:
            await self._messages.update(tx, message.id, body, edited_at, recalled)
            if message.kind == "text":
                # A recalled message leaves the index; an edited one is found by its new words.
                await self._search.remove(tx, message.id)
                if not recalled:
                    await self._search.add(tx, [(message.id, message.conversation_id, index_text(body["text"]))])

        await self._db.transaction("message_update", write)
        message.body, message.edited_at, message.recalled = body, edited_at, recalled
        message.invalidate()
        self.bus.push_event(self.audience.members(ref), message_frame("message.updated", message))
        return message


def _encode_list_cursor(at: int, conversation_id: str) -> str:
    return cursors.encode_cursor("conversations", at, conversation_id)


def _decode_list_cursor(cursor: str) -> tuple[int, str]:
    """The (last activity, conversation id) a cursor points past; 400 if not ours."""
    at, cid = cursors.int_text_cursor(cursor, "conversations")
    try:
        ConversationRef.parse(cid)  # the id goes to SQL: only the shape this list issues
    except LuckyError:
        raise cursors.bad_cursor() from None
    return at, cid


def parse_seq(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise validation_failed(field, "a whole number, 0 or more")
    return value


def parse_user_id(value: Any, field: str) -> int:
    parsed = parse_id(value)
    if parsed is None:
        raise validation_failed(field, "a user id (a decimal string)")
    return parsed


__all__ = ["ChatService", "ConversationView", "SendRequest"]
