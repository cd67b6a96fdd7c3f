"""The audit log: who changed what, read by operators on the console's audit page.

Services that change accounts write their own entries inside their transactions (see
`AuthService`); `AuditLog.record` is for changes whose service keeps no log of its own, made
by an operator through the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..clock import Clock
from ..ids import Snowflake
from ..storage import Database
from ..storage.stores.audit import AuditStore
from ..storage.stores.users import UserStore


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: int  # epoch ms
    actor_id: int | None
    actor: str  # the actor's username; '' for the system (the CLI without an account, a job)
    action: str  # dotted: user.disable, group.dismiss, console.login...
    target: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # the id to pass as `before_id` for the next (older) page


class AuditLog:
    def __init__(self, db: Database, clock: Clock, ids: Snowflake) -> None:
        self._db = db
        self._clock = clock
        self._ids = ids
        self._store = AuditStore(db)
        self._users = UserStore(db)

    async def record(self, actor_id: int | None, action: str, target: str,
                     details: dict[str, object] | None = None) -> None:
        """Write one entry, in a transaction of its own."""
        await self._db.transaction("audit_record", lambda tx: self._store.record(
            tx, self._ids.next_id(), self._clock.now_ms(), actor_id, action, target, details))

    async def page(self, *, before_id: int | None = None, limit: int = 50, actor: str | None = None,
                   action: str | None = None) -> AuditPage:
        """Newest first, keyset-paged by id; `actor` is a username (unknown: an empty page)."""
        actor_id: int | None = None
        if actor:
            user = await self._users.by_username(actor.strip().lower())
            if user is None:
                return AuditPage([], None)
            actor_id = user.id
        rows = await self._store.page(before_id if before_id is not None else 2**63 - 1, limit + 1,
                                      actor_id=actor_id, action=action or None)
        more = len(rows) > limit
        rows = rows[:limit]
        actors = await self._users.by_ids(sorted({int(r["actor_id"]) for r in rows if r["actor_id"] is not None}))
        entries = []
        for r in rows:
            aid = int(r["actor_id"]) if r["actor_id"] is not None else None
            user = actors.get(aid) if aid is not None else None
            entries.append(AuditEntry(int(r["id"]), int(r["at"]), aid, user.username if user else "",
                                      r["action"], r["target"], orjson.loads(r["details"] or "{}")))
        return AuditPage(entries, entries[-1].id if more and entries else None)
