"""The operator console's sign-in sessions (table `console_sessions`, migration v0010)."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class ConsoleSessionRow:
    id_hash: str
    user_id: int
    csrf: str
    ip: str
    created_at: int
    last_seen: int
    flash: str

    @classmethod
    def from_row(cls, row: Row) -> ConsoleSessionRow:
        return cls(row["id_hash"], int(row["user_id"]), row["csrf"], row["ip"], int(row["created_at"]),
                   int(row["last_seen"]), row["flash"])


class ConsoleSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, tx: Tx, row: ConsoleSessionRow) -> None:
        await tx.execute(
            "INSERT INTO console_sessions (id_hash, user_id, csrf, ip, created_at, last_seen, flash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.id_hash, row.user_id, row.csrf, row.ip, row.created_at, row.last_seen, row.flash),
        )

    async def get(self, id_hash: str) -> ConsoleSessionRow | None:
        row = await self._db.fetch_one(
            "SELECT id_hash, user_id, csrf, ip, created_at, last_seen, flash FROM console_sessions "
            "WHERE id_hash = ?", (id_hash,))
        return ConsoleSessionRow.from_row(row) if row is not None else None

    async def touch(self, id_hash: str, now_ms: int) -> None:
        await self._db.execute("console_session_touch",
                               "UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?", (now_ms, id_hash))

    async def set_flash(self, id_hash: str, flash: str) -> None:
        await self._db.execute("console_session_flash",
                               "UPDATE console_sessions SET flash = ? WHERE id_hash = ?", (flash, id_hash))

    async def delete(self, id_hash: str) -> int:
        return await self._db.execute("console_session_end",
                                      "DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

    async def delete_of_user(self, tx: Tx, user_id: int) -> int:
        return await tx.execute("DELETE FROM console_sessions WHERE user_id = ?", (user_id,))

    async def delete_expired(self, tx: Tx, seen_before: int, created_before: int) -> int:
        # Two statements: the idle one uses console_sessions_by_last_seen; the table stays small.
        idle = await tx.execute("DELETE FROM console_sessions WHERE last_seen < ?", (seen_before,))
        return idle + await tx.execute("DELETE FROM console_sessions WHERE created_at < ?", (created_before,))
