"""QR sign-in sessions (table `qr_sessions`, migration v0012)."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class QrRow:
    id: str
    poll_hash: str
    state: str  # pending, scanned, confirmed, cancelled (expiry is computed from expires_at)
    device_name: str
    device_platform: str
    created_at: int
    expires_at: int
    scanned_by: int | None
    claimed_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> QrRow:
        return cls(row["id"], row["poll_hash"], row["state"], row["device_name"], row["device_platform"],
                   int(row["created_at"]), int(row["expires_at"]),
                   int(row["scanned_by"]) if row["scanned_by"] is not None else None,
                   int(row["claimed_at"]) if row["claimed_at"] is not None else None)


_COLUMNS = "id, poll_hash, state, device_name, device_platform, created_at, expires_at, scanned_by, claimed_at"


class QrStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, tx: Tx, row: QrRow) -> None:
        await tx.execute(
            f"INSERT INTO qr_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.poll_hash, row.state, row.device_name, row.device_platform, row.created_at,
             row.expires_at, row.scanned_by, row.claimed_at))

    async def get(self, qr_id: str) -> QrRow | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM qr_sessions WHERE id = ?", (qr_id,))
        return QrRow.from_row(row) if row is not None else None

    async def get_in(self, tx: Tx, qr_id: str) -> QrRow | None:
        row = await tx.fetch_one(f"SELECT {_COLUMNS} FROM qr_sessions WHERE id = ?", (qr_id,))
        return QrRow.from_row(row) if row is not None else None

    async def move(self, tx: Tx, qr_id: str, from_state: str, to_state: str, now_ms: int,
                   scanned_by: int | None = None) -> bool:
        """`from_state` -> `to_state` unless the session expired or moved meanwhile (a
        conditional UPDATE, so that two nodes racing on one session cannot both win)."""
        changed = await tx.execute(
            "UPDATE qr_sessions SET state = ?, scanned_by = COALESCE(?, scanned_by) "
            "WHERE id = ? AND state = ? AND expires_at > ?",
            (to_state, scanned_by, qr_id, from_state, now_ms))
        return changed == 1

    async def claim(self, tx: Tx, qr_id: str, now_ms: int) -> bool:
        """Mark a confirmed session's token set taken; True for exactly one caller, ever."""
        changed = await tx.execute(
            "UPDATE qr_sessions SET claimed_at = ? "
            "WHERE id = ? AND state = 'confirmed' AND claimed_at IS NULL AND expires_at > ?",
            (now_ms, qr_id, now_ms))
        return changed == 1

    async def delete_expired(self, before_ms: int, limit: int) -> int:
        """Remove up to `limit` sessions that expired before `before_ms` (qr_sessions_by_expiry)."""
        rows = await self._db.fetch_all(
            "SELECT id FROM qr_sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?", (before_ms, limit))
        if not rows:
            return 0

        async def delete(tx: Tx) -> int:
            removed = 0
            for row in rows:
                removed += await tx.execute("DELETE FROM qr_sessions WHERE id = ?", (row["id"],))
            return removed

        return await self._db.transaction("qr_cleanup", delete)
