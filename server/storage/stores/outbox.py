"""The two retry queues of background work: the message outbox (table `outbox`, one row per
stored message until it was dispatched) and the deliveries (table `deliveries`, one row per
webhook notification until the receiver answered 2xx).

Both are claimed the same way, so that two processes never work on one row at once: a claim
marks the due rows `sending`, moves their `next_attempt_at` past a lease and counts the
attempt, in one statement; the attempt's outcome deletes the row or makes it `pending` (due
again after a backoff) or `failed`. A `sending` row whose lease ran out (its claimer died) is
due again like a pending one. `lucky outbox retry` re-arms only `pending` rows, never one in
flight.
On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED` (a row another claim holds is
passed over, not waited for); on SQLite the one writer serializes the claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ..engine import Database, Row, Tx, as_columns

PENDING, SENDING, FAILED = "pending", "sending", "failed"


@dataclass(frozen=True)
class Claimed:
    """A row claimed for one attempt: its key, the attempt's number (1 = the first), and the
    delivery's stored payload ("" for an outbox row)."""

    key: int
    attempts: int
    payload: str = ""
    kind: str = ""  # a delivery's kind (`push`, `sms`); "" for an outbox row


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: done (the row goes), or retried at `next_at`, or failed."""

    key: int
    done: bool
    next_at: int = 0
    failed: bool = False
    error: str = ""


@dataclass(frozen=True)
class FailedRow:
    """A row that had every attempt: its key, attempts, when it was written, the last error,
    and its `next_attempt_at` (with the key, its position in the listing)."""

    key: int
    attempts: int
    created_at: int
    next_attempt_at: int
    last_error: str


@dataclass(frozen=True)
class QueueCounts:
    kind: str
    pending: int
    failed: int
    oldest_pending_at: int | None  # created_at of the oldest pending row


class RetryQueue:
    """A table of rows retried with backoff: claim, record outcomes, count, re-arm."""

    def __init__(self, db: Database, table: str, key: str, kind_column: str) -> None:
        """`kind_column` is an SQL expression for the rows' kind (a column, or a literal)."""
        self._db = db
        self._table = table
        self._key = key
        self._kind = kind_column
        skip = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
        payload = ", payload, kind" if table == "deliveries" else ""
        # The subquery's ORDER BY and LIMIT pick the oldest due rows through the
        # (state, next_attempt_at) index; the outer UPDATE claims exactly those.
        self._claim_sql = (
            f"UPDATE {table} SET state = 'sending', next_attempt_at = ?, attempts = attempts + 1 WHERE {key} IN ("
            f"SELECT {key} FROM {table} WHERE state IN ('pending', 'sending') AND next_attempt_at <= ? "
            f"ORDER BY next_attempt_at LIMIT ?{skip}) RETURNING {key} AS key, attempts{payload}")

    async def claim(self, now_ms: int, lease_ms: int, limit: int) -> list[Claimed]:
        """Claim up to `limit` pending rows due by `now_ms` for `lease_ms`: no other claim gets
        them until then (a claimer that dies leaves them to be claimed again after the lease)."""

        async def claim(tx: Tx) -> list[Row]:
            return await tx.fetch_all(self._claim_sql, (now_ms + lease_ms, now_ms, limit))

        rows = await self._db.transaction(f"{self._table}_claim", claim)
        found = [Claimed(int(r["key"]), int(r["attempts"]), str(r.get("payload", "")), str(r.get("kind", "")))
                 for r in rows]
        found.sort(key=lambda c: c.key)
        return found

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Delete the rows that are done; re-arm (or fail) the others. One transaction."""
        done = [o.key for o in outcomes if o.done]
        again = [(FAILED if o.failed else PENDING, o.next_at, o.error[:500], o.key) for o in outcomes if not o.done]
        if not done and not again:
            return

        async def write(tx: Tx) -> None:
            await self.delete(tx, done)
            if again:
                await tx.executemany(
                    f"UPDATE {self._table} SET state = ?, next_attempt_at = ?, last_error = ? WHERE {self._key} = ?",
                    again)

        await self._db.transaction(f"{self._table}_record", write)

    async def delete(self, tx: Tx, keys: Sequence[int]) -> None:
        """Rows that are done leave the table (deleting keeps its index small)."""
        if not keys:
            return
        if self._db.dialect == "postgresql":
            # executemany of one row: the write is held and sent with the transaction's next
            # statement (a round trip fewer on both databases); nobody reads its row count.
            await tx.executemany(f"DELETE FROM {self._table} WHERE {self._key} = ANY(?::bigint[])", [[list(keys)]])
        else:
            # executemany: SQLite runs it with the transaction's next statement (one thread trip fewer).
            await tx.executemany(f"DELETE FROM {self._table} WHERE {self._key} = ?", [(k,) for k in keys])

    async def counts(self) -> list[QueueCounts]:
        """Pending (in flight included) and failed rows per kind, and the oldest pending row's
        creation time."""
        rows = await self._db.fetch_all(
            f"SELECT {self._kind} AS kind, state, COUNT(*) AS n, MIN(created_at) AS oldest "
            f"FROM {self._table} GROUP BY 1, 2")  # by position: the kind may be a literal
        by_kind: dict[str, dict[str, Row]] = {}
        for row in rows:
            by_kind.setdefault(str(row["kind"]), {})[str(row["state"])] = row
        found = []
        for kind, states in sorted(by_kind.items()):
            waiting = [states[s] for s in (PENDING, SENDING) if s in states]
            failed = states.get(FAILED)
            found.append(QueueCounts(kind, sum(int(r["n"]) for r in waiting), int(failed["n"]) if failed else 0,
                                     min((int(r["oldest"]) for r in waiting), default=None)))
        return found

    async def failed_page(self, after: tuple[int, int] | None, limit: int) -> list[FailedRow]:
        """Failed rows in (next_attempt_at, key) order after the position `after` (None: from
        the first): a range of the (state, next_attempt_at) index, however long the table."""
        start = after or (-1, -1)
        rows = await self._db.fetch_all(
            f"SELECT {self._key} AS key, attempts, created_at, next_attempt_at, last_error FROM {self._table} "
            f"WHERE state = 'failed' AND (next_attempt_at, {self._key}) > (?, ?) "
            f"ORDER BY next_attempt_at, {self._key} LIMIT ?", (start[0], start[1], limit))
        return [FailedRow(int(r["key"]), int(r["attempts"]), int(r["created_at"]), int(r["next_attempt_at"]),
                          str(r["last_error"])) for r in rows]

    async def due_now(self, now_ms: int) -> int:
        """Pending rows waiting for a later attempt become due at once; how many."""
        return await self._db.execute(
            f"{self._table}_due_now",
            f"UPDATE {self._table} SET next_attempt_at = ? WHERE state = 'pending' AND next_attempt_at > ?",
            (now_ms, now_ms))

    async def revive_failed(self, now_ms: int) -> int:
        """Failed rows become pending and due at once, their attempts counted from 0; how many."""
        return await self._db.execute(
            f"{self._table}_revive",
            f"UPDATE {self._table} SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = '' "
            "WHERE state = 'failed'",
            (now_ms,))


class OutboxStore(RetryQueue):
    """One row per stored message until it was dispatched."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, "outbox", "message_id", "'message'")

    async def add(self, tx: Tx, rows: Sequence[tuple[int, str]], now_ms: int, due_at: int) -> None:
        """Rows (message_id, conversation_id) for messages just stored, due again at `due_at`
        unless marked dispatched (deleted) before."""
        full = [(mid, cid, due_at, now_ms) for mid, cid in rows]
        if self._db.dialect == "postgresql":
            await tx.executemany(  # one row of arrays, held like every executemany
                "INSERT INTO outbox (message_id, conversation_id, next_attempt_at, created_at) "
                "SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[])", [as_columns(full, 4)])
        else:
            await tx.executemany(
                "INSERT INTO outbox (message_id, conversation_id, next_attempt_at, created_at) VALUES (?, ?, ?, ?)",
                full)

    async def done(self, message_ids: Sequence[int]) -> None:
        """Dispatched messages leave the outbox, in a transaction of their own."""
        if message_ids:
            await self._db.transaction("outbox_done", lambda tx: self.delete(tx, message_ids))


@dataclass(frozen=True)
class PushTarget:
    """A recipient's membership as a notification needs it."""

    conversation_id: str
    user_id: int
    read_seq: int
    muted: bool


@dataclass(frozen=True)
class Sender:
    id: int
    username: str
    display_name: str
    avatar_file_id: int | None
    created_at: int


class DeliveryStore(RetryQueue):
    """One row per webhook notification until the receiver took it."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, "deliveries", "id", "kind")

    async def add(self, tx: Tx, rows: Sequence[tuple[int, str, str]], now_ms: int) -> None:
        """Deliveries (id, kind, payload), due at once."""
        await tx.executemany(
            "INSERT INTO deliveries (id, kind, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)",
            [(did, kind, payload, now_ms, now_ms) for did, kind, payload in rows])

    async def expire(self, kind: str, created_by: int) -> int:
        """Delete the rows of `kind` written at `created_by` or earlier, whatever their state
        (an SMS whose code has expired is not worth sending, and its body must not linger)."""
        return await self._db.execute(
            "deliveries_expire", "DELETE FROM deliveries WHERE kind = ? AND created_at <= ?", (kind, created_by))

    async def targets(self, tx: Tx, conversation_ids: Sequence[str]) -> dict[tuple[str, int], PushTarget]:
        """Every membership of these conversations, with its read cursor and muted flag, by
        (conversation_id, user_id): one query per batch however many messages it holds."""
        marks = ", ".join("?" for _ in conversation_ids)
        rows = await tx.fetch_all(
            "SELECT conversation_id, user_id, read_seq, muted FROM conversation_members "
            f"WHERE conversation_id IN ({marks})", list(conversation_ids))
        return {(str(r["conversation_id"]), int(r["user_id"])): PushTarget(
            str(r["conversation_id"]), int(r["user_id"]), int(r["read_seq"]), bool(r["muted"])) for r in rows}

    async def senders(self, tx: Tx, user_ids: Sequence[int]) -> dict[int, Sender]:
        """The users named, as a notification shows its sender."""
        marks = ", ".join("?" for _ in user_ids)
        rows = await tx.fetch_all(
            f"SELECT id, username, display_name, avatar_file_id, created_at FROM users WHERE id IN ({marks})",
            list(user_ids))
        return {int(r["id"]): Sender(int(r["id"]), str(r["username"]), str(r["display_name"]),
                                     None if r["avatar_file_id"] is None else int(r["avatar_file_id"]),
                                     int(r["created_at"])) for r in rows}
