"""The send queue: pending sends are stored together, one transaction per batch.

One writer task drains whatever sends are waiting (up to `batch_max`), and in one
transaction: answers repeats of a `(sender, client_msg_id)` with the stored message (looked
for only once the unique index refused one: see `SendWriter._start`), reserves
each conversation's next seqs, inserts the messages and their outbox rows, and advances the
senders' own read cursors. Only after the commit is each sender's future resolved, so `sent`
means durable. The outbox rows of the previous batch, already dispatched, are deleted in the
same transaction, so dispatch costs no transaction of its own (an idle writer's last ones are
deleted by `flush_dispatched`, which the chat sweeper calls).

`BatchHook`s write what else a batch makes necessary in its transaction (offline push's
deliveries, server/outbox/push.py). With none (push off) the batch costs what it did before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ..clock import Clock
from ..errors import LuckyError, validation_failed
from ..ids import Snowflake
from ..storage import Database, DatabaseError, Tx, UniqueViolation
from ..storage.stores.conversations import ConversationStore
from ..search.segment import index_text
from ..storage.stores.messages import MessageRow, MessageStore
from ..storage.stores.outbox import OutboxStore
from ..storage.stores.search import SearchStore
from .model import ConversationRef, Message

log = logging.getLogger(__name__)


class SendReply(Protocol):
    """Who hears how a send ended: once, after its batch committed (or failed)."""

    def stored(self, message: Message, is_new: bool) -> None:
        """The message is durable (`is_new` False: a repeated client_msg_id got the first)."""

    def failed(self, error: BaseException) -> None:
        """It was not stored: a LuckyError to pass on, or another error (store it again)."""


class AwaitedReply:
    """A reply for callers that await the outcome (HTTP sends, system messages): a future.
    The WebSocket's sends answer `sent` from a reply of their own, without one."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[tuple[Message, bool]] = asyncio.get_running_loop().create_future()

    def stored(self, message: Message, is_new: bool) -> None:
        if not self.future.done():
            self.future.set_result((message, is_new))

    def failed(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(eq=False)
class PendingSend:
    conversation: ConversationRef
    sender_id: int
    kind: str
    body: dict[str, Any]
    client_msg_id: str
    reply_to: int | None
    members: Sequence[int]  # ensured as conversation members with the conversation's first message
    origin: int | None = None  # the session that sent it: it gets `sent`, not a copy
    also_notify: Sequence[int] = ()  # pushed to these users too (a member just added)
    mentions: Sequence[int] = ()  # members whose conversation shows a mention until read
    # Runs in the same transaction once the message has its seq (a group change and its
    # system message are stored together or not at all).
    effect: Callable[[Tx, Message], Awaitable[None]] | None = None
    # Runs once the message was pushed and before any later message is: a group change
    # takes effect on the fan-out exactly at its seq (a kicked member gets the message that
    # removes it, and nothing stored after it).
    on_dispatched: Callable[[Message], None] | None = None
    body_json: str = ""  # the body as stored, serialized by the writer before its transaction
    reply: SendReply = field(default_factory=AwaitedReply)
    settled: bool = False  # its reply was told; a batch stored again item by item skips it
    key: tuple[int, str] = field(init=False)  # (sender_id, client_msg_id): what makes a send a repeat

    def __post_init__(self) -> None:
        self.key = (self.sender_id, self.client_msg_id)

    @property
    def future(self) -> asyncio.Future[tuple[Message, bool]]:
        """The outcome, for a send queued with the default `AwaitedReply`."""
        if not isinstance(self.reply, AwaitedReply):
            raise TypeError("this send answers through its own reply, not a future")
        return self.reply.future

    def stored(self, message: Message, is_new: bool) -> None:
        if not self.settled:
            self.settled = True
            self.reply.stored(message, is_new)

    def failed(self, error: BaseException) -> None:
        if not self.settled:
            self.settled = True
            self.reply.failed(error)


def message_from_row(row: MessageRow) -> Message:
    message = Message(row.id, row.conversation_id, row.seq, row.sender_id, row.kind, row.body,
                      row.client_msg_id, row.created_at, row.reply_to, row.edited_at, row.recalled)
    if row.unreadable:
        message.mark_unreadable("its stored body is not a JSON object")
    return message


class BatchHook(Protocol):
    async def in_transaction(self, tx: Tx, created: Sequence[tuple[Message, PendingSend]], now_ms: int) -> None:
        """Write, in the batch's transaction, what the messages just stored make necessary.

        May run more than once for one message (a batch that failed is stored again item by
        item); only a committed run counts."""

    def committed(self) -> None:
        """The transaction of the last `in_transaction` call has committed."""


class SendWriter:
    def __init__(self, db: Database, ids: Snowflake, clock: Clock, batch_max: int,
                 on_committed: Callable[[list[tuple[Message, PendingSend]]], list[int]],
                 outbox_grace_ms: int, hooks: Sequence[BatchHook]) -> None:
        """`on_committed` pushes each stored batch (in order) and returns the message ids it
        dispatched, whose outbox rows are then deleted with the next batch. An outbox row
        still there `outbox_grace_ms` after its commit is the outbox job's to dispatch again."""
        self._db = db
        self._ids = ids
        self._clock = clock
        self._batch_max = batch_max
        self._messages = MessageStore(db)
        self._outbox = OutboxStore(db)
        self._outbox_grace_ms = outbox_grace_ms
        self._hooks = tuple(hooks)
        self._conversations = ConversationStore(db)
        self._search = SearchStore(db)
        self._queue: asyncio.Queue[PendingSend | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._known_conversations: set[str] = set()
        self._dispatched: list[int] = []  # outbox rows to delete with the next batch
        self.on_committed = on_committed
        self.batches = 0
        self.messages_stored = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="send-writer")

    async def stop(self) -> None:
        """Store everything already queued, then stop."""
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(None)
        await self._task
        self._task = None
        await self.flush_dispatched()

    async def flush_dispatched(self) -> None:
        """Delete the outbox rows of messages dispatched since the last batch; a busy writer
        does it with its next batch, this is for an idle one (and for stopping)."""
        done, self._dispatched = self._dispatched, []
        try:
            await self._outbox.done(done)
        except BaseException:
            self._dispatched = done + self._dispatched
            raise

    def mark_dispatched(self, message_ids: list[int]) -> None:
        """Messages dispatched after `on_committed` returned (pushes to other nodes that went
        out later): their outbox rows are deleted with the next batch, like the others."""
        self._dispatched.extend(message_ids)

    def enqueue(self, send: PendingSend) -> None:
        """Queue a send; its reply hears (the stored message, True if new) once committed."""
        if self._task is None or self._closing:
            raise LuckyError(503, "unavailable", "The server is shutting down; send again after reconnecting.")
        self._queue.put_nowait(send)

    async def _run(self) -> None:
        # Two batches overlap: the next one is stored (on the database's thread) while the
        # event loop answers and dispatches the one just stored, so neither waits for the
        # other. A batch is still started only after the one before it committed (seqs, the
        # outbox, the hooks see batches in order) and dispatched only after it was.
        stopping = False
        stored: _Stored | None = None  # committed, not yet answered and dispatched
        while True:
            batch: list[PendingSend] = []
            if stored is None:
                if stopping:
                    return
                first = await self._queue.get()
                if first is None:
                    return
                batch.append(first)
            while len(batch) < self._batch_max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True  # store what is queued, then stop
                    break
                batch.append(item)
            # A body that cannot be stored fails its own send here, before the transaction,
            # instead of failing the batch it came with (which would cost a retry per item).
            batch = [item for item in batch if serialize_body(item)]
            writing = self._start(batch) if batch else None
            if stored is not None:
                if writing is not None and isinstance(writing.future, asyncio.Task):
                    # Not started yet (PostgreSQL): let it send its first statements, then
                    # answer the batch before while the database works on them.
                    await asyncio.sleep(0)
                self._settle(stored)
                stored = None
            if writing is not None:
                try:
                    stored = await self._finish(writing)
                except UniqueViolation:  # a repeat of a stored send: look for repeats this time
                    stored = await self._store_looking_for_repeats(batch)
                except Exception:  # one item at a time, so that one bad send fails alone
                    await self._store_one_by_one(batch)

    async def _store_looking_for_repeats(self, batch: list[PendingSend]) -> _Stored | None:
        try:
            return await self._finish(self._start(batch, look_for_repeats=True))
        except Exception:  # one item at a time, so that one bad send fails alone
            await self._store_one_by_one(batch)
            return None

    async def _store_one_by_one(self, batch: list[PendingSend]) -> None:
        if len(batch) == 1:
            raise_into(batch[0], "could not store the message")
            return
        for item in batch:
            try:
                self._settle(await self._finish(self._start([item], look_for_repeats=True)))
            except Exception:
                raise_into(item, "could not store the message")

    def _start(self, batch: list[PendingSend], look_for_repeats: bool = False) -> _Writing:
        """Start storing a batch in one transaction; `_finish` awaits it, `_settle` answers
        and dispatches it.

        A batch first goes without looking for repeats of stored sends: a repeat is rare (a
        client that resends after reconnecting), and the unique `(sender_id, client_msg_id)`
        index refuses one anyway, failing the batch, which is then stored again looking for
        them (`look_for_repeats`). Not looking saves a statement, and on PostgreSQL a round
        trip, per batch. Repeats inside the batch are always found, before its statements."""
        now = self._clock.now_ms()
        done_before, self._dispatched = self._dispatched, []
        results: dict[int, tuple[Message, bool]] = {}
        # Taken here, on the event loop: `write` may run on the database's thread, where it
        # must touch nothing the loop changes (see Database.transaction_on_thread).
        # (`_known_conversations` it may read: it changes only between this writer's batches.)
        ids = [self._ids.next_id() for _ in batch]

        async def write(tx: Tx) -> list[tuple[Message, PendingSend]]:
            results.clear()
            unused_ids = iter(ids)
            await self._outbox.delete(tx, done_before)
            stored: dict[tuple[int, str], MessageRow] = {}
            if look_for_repeats:
                keys = list(dict.fromkeys(item.key for item in batch))
                stored = {(r.sender_id, r.client_msg_id): r for r in await self._messages.existing(tx, keys)}
            fresh: dict[tuple[int, str], Message] = {}
            by_conversation: dict[str, list[PendingSend]] = {}
            for index, item in enumerate(batch):
                key = item.key
                if key in stored:
                    results[index] = (message_from_row(stored[key]), False)
                elif key not in fresh:
                    fresh[key] = Message(0, item.conversation.id, 0, item.sender_id, item.kind, item.body,
                                         item.client_msg_id, now, item.reply_to)
                    by_conversation.setdefault(item.conversation.id, []).append(item)
            created: list[tuple[Message, PendingSend]] = []
            lasts = await self._messages.bump_seqs(
                tx, [(cid, items[0].conversation.kind, len(items)) for cid, items in by_conversation.items()], now)
            await self._conversations.ensure_members(tx, [
                (cid, uid) for cid, items in by_conversation.items()
                if cid not in self._known_conversations for uid in items[0].members], now)
            for cid, items in by_conversation.items():
                last = lasts[cid]
                for offset, item in enumerate(items):
                    message = fresh[item.key]
                    message.id = next(unused_ids)
                    message.seq = last - len(items) + 1 + offset
                    created.append((message, item))
            if created:
                await self._messages.insert_many(tx, [
                    (m.id, m.conversation_id, m.seq, m.sender_id, m.kind, item.body_json,
                     m.client_msg_id, m.created_at, m.reply_to, None, False) for m, item in created])
                await self._outbox.add(tx, [(m.id, m.conversation_id) for m, _ in created], now,
                                       now + self._outbox_grace_ms)
                await self._search.add(tx, [(m.id, m.conversation_id, index_text(m.body["text"]))
                                            for m, _ in created if m.kind == "text"])
                newest: dict[tuple[str, int], int] = {}
                mentions: list[tuple[int, str, int]] = []
                for m, item in created:
                    newest[(m.conversation_id, m.sender_id)] = m.seq
                    if item.mentions:
                        mentions.extend((m.seq, m.conversation_id, uid) for uid in item.mentions)
                await self._conversations.advance_read(tx, [(seq, cid, uid) for (cid, uid), seq in newest.items()])
                if mentions:
                    await self._conversations.mark_mentions(tx, mentions)
                for m, item in created:
                    if item.effect is not None:
                        await item.effect(tx, m)
                for hook in self._hooks:
                    await hook.in_transaction(tx, created, now)
            first_seen: set[tuple[int, str]] = set()
            for index, item in enumerate(batch):
                if index not in results:
                    # A repeat inside this very batch gets the first copy, as a repeat.
                    results[index] = (fresh[item.key], item.key not in first_seen)
                    first_seen.add(item.key)
            return created

        # Effects and hooks are the rare batches' (files, offline push): they read state of the
        # event loop, so such a batch runs its transaction there, a trip per statement read.
        plain = not self._hooks and all(item.effect is None for item in batch)
        if plain:
            future = self._db.start_on_thread("store_messages", write)
        else:
            future = asyncio.ensure_future(self._db.transaction("store_messages", write))
        return _Writing(batch, future, results, done_before)

    async def _finish(self, writing: _Writing) -> _Stored:
        """Await a batch's transaction (a failed one leaves its outbox rows to delete later)."""
        try:
            created = await writing.future
        except BaseException:
            self._dispatched = writing.done_before + self._dispatched
            raise
        self.batches += 1
        self.messages_stored += len(created)
        if created:
            for hook in self._hooks:
                hook.committed()
        for item in writing.batch:
            self._known_conversations.add(item.conversation.id)
        return _Stored(writing.batch, writing.results, created)

    def _settle(self, stored: _Stored) -> None:
        """Answer each send of a stored batch, then dispatch its new messages."""
        # fresh[...] objects are shared by in-batch repeats; `created` holds each once.
        for index, item in enumerate(stored.batch):
            message, is_new = stored.results[index]
            try:
                item.stored(message, is_new)
            except Exception:  # one answer failing must cost neither the others nor the dispatch
                log.exception("answering a stored send failed")
        if stored.created:
            try:
                self._dispatched.extend(self.on_committed(stored.created))
            except Exception:  # the outbox job re-dispatches what was not marked done
                log.exception("dispatch of %d stored messages failed", len(stored.created))


@dataclass(slots=True)
class _Writing:
    """A batch whose transaction has started; `results` fill in as it runs."""

    batch: list[PendingSend]
    future: asyncio.Future[list[tuple[Message, PendingSend]]]
    results: dict[int, tuple[Message, bool]]
    done_before: list[int]  # the outbox rows it deletes


@dataclass(slots=True)
class _Stored:
    """A committed batch: each send's (message, is new), and the messages it created."""

    batch: list[PendingSend]
    results: dict[int, tuple[Message, bool]]
    created: list[tuple[Message, PendingSend]]


def raise_into(item: PendingSend, reason: str) -> None:
    item.failed(DatabaseError(reason))


def serialize_body(item: PendingSend) -> bool:
    """Serialize the send's body for storing; False (and the send failed, 422) if it cannot be.

    check_body keeps such bodies from the edges; this keeps any other caller's from the batch.
    """
    try:
        item.body_json = orjson.dumps(item.body).decode()
    except TypeError as exc:  # orjson.JSONEncodeError: an int past 64 bits, nesting past 254
        item.failed(validation_failed("body", f"cannot be stored as JSON: {exc}"))
        return False
    return True
