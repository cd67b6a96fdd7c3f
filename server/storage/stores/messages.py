"""Messages and each conversation's seq counter (the outbox is in outbox.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..engine import Database, Row, Tx, as_columns

_COLUMNS = ("id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at, "
            "reply_to, edited_at, recalled")
_PREFIXED = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))


@dataclass(frozen=True)
class MessageRow:
    id: int
    conversation_id: str
    seq: int
    sender_id: int
    kind: str
    body: dict[str, Any]
    client_msg_id: str
    created_at: int
    reply_to: int | None
    edited_at: int | None
    recalled: bool
    unreadable: bool = False  # the stored body is not a JSON object (body is then {})

    @classmethod
    def from_row(cls, row: Row) -> MessageRow:
        # One row that cannot be decoded must not fail a whole page: it is read as unreadable.
        try:
            body = orjson.loads(row["body"])
        except orjson.JSONDecodeError:
            body = None
        unreadable = not isinstance(body, dict)
        return cls(
            id=int(row["id"]),
            conversation_id=row["conversation_id"],
            seq=int(row["seq"]),
            sender_id=int(row["sender_id"]),
            kind=row["kind"],
            body={} if unreadable else body,
            client_msg_id=row["client_msg_id"],
            created_at=int(row["created_at"]),
            reply_to=row["reply_to"],
            edited_at=row["edited_at"],
            recalled=bool(row["recalled"]),
            unreadable=unreadable,
        )


class MessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pg = db.dialect == "postgresql"  # batches go as arrays there (see as_columns)

    async def existing(self, tx: Tx, keys: Sequence[tuple[int, str]]) -> list[MessageRow]:
        """Messages already stored under any of these (sender_id, client_msg_id) keys."""
        if not keys:
            return []
        # Keys first, joined to messages: each is one lookup in the unique index. SQLite
        # plans `(a, b) IN (VALUES ...)` as a scan of the whole table instead.
        params: list[Any]
        if self._pg:
            keyed, params = "unnest(?::bigint[], ?::text[])", as_columns(keys, 2)
        else:
            keyed, params = f"(VALUES {', '.join('(?, ?)' for _ in keys)})", [v for key in keys for v in key]
        rows = await tx.fetch_all(
            f"WITH k (sender_id, client_msg_id) AS (SELECT * FROM {keyed}) "
            f"SELECT {_PREFIXED} FROM k JOIN messages m "
            "ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id",
            params,
        )
        return [MessageRow.from_row(r) for r in rows]

    async def bump_seqs(self, tx: Tx, counts: Sequence[tuple[str, str, int]], now_ms: int) -> dict[str, int]:
        """Reserve seqs in conversations (creating them), given as (id, kind, count) with
        distinct ids; the last seq reserved in each. One statement for the whole batch."""
        if not counts:
            return {}
        params: list[Any]
        if self._pg:
            given, params = "unnest(?::text[], ?::text[], ?::bigint[])", as_columns(counts, 3)
        else:
            given, params = f"(VALUES {', '.join('(?, ?, ?)' for _ in counts)})", [v for c in counts for v in c]
        rows = await tx.fetch_all(
            f"WITH c (id, kind, n) AS (SELECT * FROM {given}) "
            "INSERT INTO conversations (id, kind, last_seq, last_message_at, created_at) "
            "SELECT id, kind, n, ?, ? FROM c WHERE true "  # WHERE: SQLite's upsert-after-SELECT rule
            "ON CONFLICT (id) DO UPDATE SET "
            "last_seq = conversations.last_seq + excluded.last_seq, last_message_at = excluded.last_message_at "
            "RETURNING id, last_seq",
            [*params, now_ms, now_ms],
        )
        return {r["id"]: int(r["last_seq"]) for r in rows}

    async def insert_many(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
        """Insert messages given as tuples in column order (see _COLUMNS), body as JSON text."""
        if self._pg:
            # executemany of one row of arrays: held, and sent with the transaction's next
            # statement or its COMMIT (one round trip for the batch's writes).
            await tx.executemany(
                f"INSERT INTO messages ({_COLUMNS}) SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], "
                "?::bigint[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[])",
                [as_columns(rows, 11)])
        else:
            await tx.executemany(
                f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    async def by_id(self, message_id: int) -> MessageRow | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        return MessageRow.from_row(row) if row else None

    async def after(self, conversation_id: str, after_seq: int, limit: int, upto_seq: int | None = None) -> list[MessageRow]:
        """Messages with seq > after_seq (and <= upto_seq), ascending."""
        if upto_seq is None:
            rows = await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (conversation_id, after_seq, limit),
            )
        else:
            rows = await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                (conversation_id, after_seq, upto_seq, limit),
            )
        return [MessageRow.from_row(r) for r in rows]

    async def before(self, conversation_id: str, before_seq: int, limit: int) -> list[MessageRow]:
        """The `limit` messages just before `before_seq`, ascending."""
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (conversation_id, before_seq, limit),
        )
        return [MessageRow.from_row(r) for r in reversed(rows)]

    async def last_of(self, conversation_ids: Sequence[str]) -> dict[str, MessageRow]:
        """The newest message of each conversation, in one statement: each is found by the
        seq index (its MAX(seq), then that row), so a page of the conversation list costs one
        trip to the database, not one per conversation."""
        if not conversation_ids:
            return {}
        params: list[Any]
        if self._pg:
            given, params = "unnest(?::text[])", [list(conversation_ids)]
        else:
            given, params = f"(VALUES {', '.join('(?)' for _ in conversation_ids)})", list(conversation_ids)
        rows = await self._db.fetch_all(
            f"WITH k (cid) AS (SELECT * FROM {given}) "
            f"SELECT {_PREFIXED} FROM k JOIN messages m ON m.conversation_id = k.cid "
            "AND m.seq = (SELECT MAX(x.seq) FROM messages x WHERE x.conversation_id = k.cid)",
            params,
        )
        return {r["conversation_id"]: MessageRow.from_row(r) for r in rows}

    async def update(self, tx: Tx, message_id: int, body: dict[str, Any], edited_at: int | None,
                     recalled: bool) -> None:
        await tx.execute(
            "UPDATE messages SET body = ?, edited_at = ?, recalled = ? WHERE id = ?",
            (orjson.dumps(body).decode(), edited_at, recalled, message_id),
        )
