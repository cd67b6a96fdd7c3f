"""A user's signed-in devices as the user sees them (GET /api/v1/me/devices): the `devices`
rows that still have a live token family, and the families a sign-out ends."""

from __future__ import annotations

from ..engine import Database, Row, Tx


class DeviceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def live(self, user_id: int, limit: int) -> list[Row]:
        """The user's devices with at least one token family not revoked, most recently seen
        first (token_families_by_user serves the EXISTS)."""
        return await self._db.fetch_all(
            "SELECT d.id, d.name, d.platform, d.created_at, d.last_seen_at, d.ip FROM devices d "
            "WHERE d.user_id = ? AND EXISTS (SELECT 1 FROM token_families f WHERE f.user_id = d.user_id "
            "AND f.device_id = d.id AND f.revoked_at IS NULL) "
            "ORDER BY d.last_seen_at DESC, d.id LIMIT ?", (user_id, limit))

    async def revoke(self, tx: Tx, user_id: int, device_id: str, reason: str, now_ms: int) -> list[int]:
        """Revoke every live token family of one of the user's devices; the families revoked
        (none: not this user's device, or signed out already)."""
        rows = await tx.fetch_all(
            "SELECT id FROM token_families WHERE user_id = ? AND device_id = ? AND revoked_at IS NULL",
            (user_id, device_id))
        families = [int(r["id"]) for r in rows]
        for family_id in families:
            await tx.execute(
                "UPDATE token_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
                (now_ms, reason, family_id))
        return families

    async def seen(self, tx: Tx, user_id: int, device_id: str, now_ms: int, ip: str) -> None:
        """The device was just used (a refresh, a socket connect) from `ip` ('' keeps the last)."""
        await tx.execute(
            "UPDATE devices SET last_seen_at = ?, ip = COALESCE(NULLIF(?, ''), ip) WHERE user_id = ? AND id = ?",
            (now_ms, ip, user_id, device_id))
