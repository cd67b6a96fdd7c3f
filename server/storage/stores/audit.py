"""The audit log: who did what to whom, for operators."""

from __future__ import annotations

import orjson

from ..engine import Database, Row, Tx


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, tx: Tx, entry_id: int, at: int, actor_id: int | None, action: str,
                     target: str, details: dict[str, object] | None = None) -> None:
        await tx.execute(
            "INSERT INTO audit_log (id, at, actor_id, action, target, details) VALUES (?, ?, ?, ?, ?, ?)",
            (entry_id, at, actor_id, action, target, orjson.dumps(details or {}).decode()),
        )

    async def recent(self, before_id: int, limit: int) -> list[Row]:
        return await self._db.fetch_all(
            "SELECT id, at, actor_id, action, target, details FROM audit_log "
            "WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before_id, limit),
        )

    async def page(self, before_id: int, limit: int, *, actor_id: int | None = None,
                   action: str | None = None) -> list[Row]:
        """Entries with ids below `before_id`, newest first, optionally of one actor and/or one
        action (each filter has an index ending in id: migration v0010)."""
        where = ["id < ?"]
        params: list[object] = [before_id]
        if actor_id is not None:
            where.append("actor_id = ?")
            params.append(actor_id)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        params.append(limit)
        return await self._db.fetch_all(
            "SELECT id, at, actor_id, action, target, details FROM audit_log "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            tuple(params),
        )
