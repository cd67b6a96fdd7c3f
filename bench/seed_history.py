"""Filling a Lucky database with history fast, before the server starts (issue 14, cost growth).

Sending 10^7 messages through the server would take hours; the rows are instead inserted with
bulk SQL into the real tables, exactly as the send path would have left them once every message
was dispatched:

- `messages`: one row per message, seqs 1..N contiguous per conversation, the two members of a
  direct conversation sending in turn, a `text` body as the writer stores it (`{"text": ...}`,
  compact JSON), a unique `client_msg_id` per sender, Snowflake ids made from `created_at`
  (one message a millisecond, every conversation in a time range of its own, all before the
  server starts, so no id the server makes later can collide);
- `conversations`: the seq counter at the last seq, `last_message_at` the last message's time;
- `conversation_members`: both members, each having read everything (`read_seq` = last seq);
- no `outbox` rows (every message was dispatched), and no `message_search` rows: search is not
  on the paths measured here, so it is left out to keep seeding fast (a W1 against the seeded
  database therefore writes into an empty search index).

The rows are generated inside the database (a recursive CTE on SQLite, `generate_series` on
PostgreSQL) in transactions of `CHUNK` messages, so Python never builds 10^7 tuples. Accounts
are made by `seed.seed_users` (the row registration writes, a cheap password hash), so the
benchmark can log them in over HTTP.

What is seeded (`GrowthPlan`): one direct conversation of `big` messages (`big-a`, `big-b`),
one of `sync` messages (`sync-a`, `sync-b`), a user `many` in `many` direct conversations of
`per_many` messages each, with `peer00000`, `peer00001`, ..., and `others` conversations of one
message among those peers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lucky_server.chat.model import DIRECT, ConversationRef
from lucky_server.config import load_config
from lucky_server.core import open_core
from lucky_server.ids import LUCKY_EPOCH_MS
from lucky_server.storage import Database, Tx
from lucky_server.storage.stores.users import UserStore

from .seed import seed_users

CHUNK = 500_000  # messages per transaction: big enough to be fast, small enough for the WAL
_ID_SHIFT = 22  # Snowflake: milliseconds above 10 bits of worker and 12 of sequence (worker 0, seq 0)

# One conversation's messages seqs lo..hi. Parameters: lo, hi, the conversation's first
# millisecond minus 1 (seq s is at base + s), base again for the id, the conversation id, the
# sender of odd seqs, of even seqs. Dialects differ only in how the seqs are generated.
_SELECT_ROWS = (
    "SELECT ((base + seq - {epoch}) << {shift}), cid, seq, CASE WHEN seq % 2 = 1 THEN odd ELSE even END, "
    "'text', '{{\"text\":\"seeded message ' || seq || '\"}}', 'seed-' || (base + seq), base + seq, "
    "NULL, NULL, FALSE FROM {source}"
)
_INSERT = ("INSERT INTO messages (id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at, "
           "reply_to, edited_at, recalled) ")
_SOURCES = {
    "sqlite": ("(WITH RECURSIVE s(seq) AS (SELECT ? UNION ALL SELECT seq + 1 FROM s WHERE seq < ?) "
               "SELECT seq, ? AS base, ? AS cid, ? AS odd, ? AS even FROM s)"),
    "postgresql": ("(SELECT seq, ?::bigint AS base, ?::text AS cid, ?::bigint AS odd, ?::bigint AS even "
                   "FROM generate_series(?::bigint, ?::bigint) AS seq) AS g"),
}


@dataclass(frozen=True)
class GrowthPlan:
    """How much history to seed (see the module's docstring)."""

    big: int = 10_000_000
    sync: int = 10_000
    many: int = 2_000
    per_many: int = 3
    # Other people's conversations (among the peers, one message each), so that the user's
    # rows are a small part of the membership and conversation tables, as on a real site: with
    # only that user's 2,000, PostgreSQL rightly reads those tables whole.
    others: int = 100_000

    @property
    def total(self) -> int:
        return self.big + self.sync + self.many * self.per_many + (self.others if self.many > 1 else 0)


@dataclass
class Seeded:
    """What was seeded: the conversations to measure, and the usernames to log in."""

    big: str = ""
    sync: str = ""
    many_user: str = "many"
    users: dict[str, int] = field(default_factory=dict)
    messages: int = 0
    seconds: float = 0.0


def _insert_sql(dialect: str) -> str:
    return _INSERT + _SELECT_ROWS.format(epoch=LUCKY_EPOCH_MS, shift=_ID_SHIFT, source=_SOURCES[dialect])


async def _insert_messages(tx: Tx, dialect: str, cid: str, odd: int, even: int, lo: int, hi: int,
                           base: int) -> None:
    if dialect == "postgresql":
        params: tuple[object, ...] = (base, cid, odd, even, lo, hi)
    else:
        params = (lo, hi, base, cid, odd, even)
    await tx.execute(_insert_sql(dialect), params)


async def _add_conversation(tx: Tx, cid: str, a: int, b: int, count: int, base: int) -> None:
    last_at = base + count
    await tx.execute("INSERT INTO conversations (id, kind, last_seq, last_message_at, created_at) "
                     "VALUES (?, ?, ?, ?, ?)", (cid, DIRECT, count, last_at, base + 1))
    await tx.executemany("INSERT INTO conversation_members (conversation_id, user_id, read_seq, joined_at) "
                         "VALUES (?, ?, ?, ?)", [(cid, a, count, base + 1), (cid, b, count, base + 1)])


async def _seed_conversation(db: Database, cid: str, a: int, b: int, count: int, base: int,
                             progress: Callable[[int], None]) -> None:
    """A direct conversation of `count` messages, `a` sending the odd seqs; in chunks."""
    lo = 1
    while lo <= count:
        hi = min(count, lo + CHUNK - 1)

        async def chunk(tx: Tx, lo: int = lo, hi: int = hi) -> None:
            await _insert_messages(tx, db.dialect, cid, a, b, lo, hi, base)
            if hi == count:
                await _add_conversation(tx, cid, a, b, count, base)

        await db.transaction("seed_messages", chunk)
        progress(hi - lo + 1)
        lo = hi + 1


def _peer_pairs(users: list[int], count: int) -> list[tuple[int, int]]:
    """`count` distinct pairs of users: user i with user i + d for d = 1, 2, ... (d below half
    the users, so no pair comes twice)."""
    n, pairs = len(users), list[tuple[int, int]]()
    for d in range(1, (n + 1) // 2):
        for i in range(n):
            if len(pairs) == count:
                return pairs
            pairs.append((users[i], users[(i + d) % n]))
    return pairs


async def _add_single_messages(tx: Tx, pairs: list[tuple[int, int]], base: int) -> None:
    """A direct conversation of one message (from the first of the pair) per pair, the k-th at
    millisecond base + 1 + k; the same rows the SQL of `_insert_sql` makes."""
    cids = [ConversationRef.direct(a, b).id for a, b in pairs]
    at = [base + 1 + k for k in range(len(pairs))]
    await tx.executemany(_INSERT + "VALUES (?, ?, 1, ?, 'text', '{\"text\":\"seeded message 1\"}', ?, ?, NULL, NULL, FALSE)",
                         [((t - LUCKY_EPOCH_MS) << _ID_SHIFT, cid, a, f"seed-{t}", t)
                          for (a, _), cid, t in zip(pairs, cids, at)])
    await tx.executemany("INSERT INTO conversations (id, kind, last_seq, last_message_at, created_at) "
                         "VALUES (?, ?, 1, ?, ?)", [(cid, DIRECT, t, t) for cid, t in zip(cids, at)])
    await tx.executemany("INSERT INTO conversation_members (conversation_id, user_id, read_seq, joined_at) "
                         "VALUES (?, ?, 1, ?)", [(cid, uid, t) for (a, b), cid, t in zip(pairs, cids, at)
                                                 for uid in (a, b)])


async def seed_history(data_dir: Path, password: str, plan: GrowthPlan,
                       progress: Callable[[int], None] = lambda n: None) -> Seeded:
    """Seed `plan` into the Lucky instance at `data_dir` (initialized, not serving)."""
    started = time.perf_counter()
    seeded = Seeded()

    def counted(count: int) -> None:
        seeded.messages += count
        progress(count)

    peers = [f"peer{i:05d}" for i in range(plan.many)]
    names = ["big-a", "big-b", "sync-a", "sync-b", "many", *peers]
    await seed_users(data_dir, names, password)
    async with open_core(load_config(data_dir, environ={})) as core:
        db = core.db
        store = UserStore(db)
        for name in names:
            user = await store.by_username(name)
            assert user is not None
            seeded.users[name] = user.id
        # Every conversation in a millisecond range of its own, all ending an hour ago.
        base = core.clock.now_ms() - 3_600_000 - plan.total - plan.many
        u = seeded.users
        seeded.big = ConversationRef.direct(u["big-a"], u["big-b"]).id
        await _seed_conversation(db, seeded.big, u["big-a"], u["big-b"], plan.big, base, counted)
        base += plan.big
        seeded.sync = ConversationRef.direct(u["sync-a"], u["sync-b"]).id
        await _seed_conversation(db, seeded.sync, u["sync-a"], u["sync-b"], plan.sync, base, counted)
        base += plan.sync
        many = u["many"]

        async def small_ones(tx: Tx) -> None:
            nonlocal base
            for peer in peers:
                cid = ConversationRef.direct(many, u[peer]).id
                await _insert_messages(tx, db.dialect, cid, many, u[peer], 1, plan.per_many, base)
                await _add_conversation(tx, cid, many, u[peer], plan.per_many, base)
                base += plan.per_many + 1

        if plan.many:
            await db.transaction("seed_conversations", small_ones)
            counted(plan.many * plan.per_many)
        if plan.many > 1 and plan.others:
            pairs = _peer_pairs([u[p] for p in peers], plan.others)
            await db.transaction("seed_others", lambda tx: _add_single_messages(tx, pairs, base))
            base += len(pairs)
            counted(len(pairs))
        if db.dialect == "postgresql":
            # Autovacuum would have analyzed tables grown by this much; SQLite has no statistics
            # unless told (Lucky never runs ANALYZE), so its planner is left as a server has it.
            for table in ("messages", "conversations", "conversation_members", "users"):
                await db.execute("seed_analyze", f"ANALYZE {table}")
    seeded.seconds = time.perf_counter() - started
    return seeded
