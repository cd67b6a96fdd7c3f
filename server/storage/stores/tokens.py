"""Token families (one per signed-in device) and their rotating refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class RefreshRecord:
    family_id: int
    user_id: int
    expires_at: int
    spent_at: int | None
    family_revoked: bool
    device_id: str


@dataclass(frozen=True)
class SessionState:
    """What every authenticated request checks: is the family live, is the user enabled."""

    revoked: bool
    disabled: bool


class TokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_family(self, tx: Tx, family_id: int, user_id: int, device_id: str,
                            now_ms: int) -> None:
        await tx.execute(
            "INSERT INTO token_families (id, user_id, device_id, created_at) VALUES (?, ?, ?, ?)",
            (family_id, user_id, device_id, now_ms),
        )

    async def add_refresh(self, tx: Tx, token_hash: str, family_id: int, user_id: int,
                          now_ms: int, expires_at: int) -> None:
        await tx.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, family_id, user_id, now_ms, expires_at),
        )

    async def get_refresh(self, tx: Tx, token_hash: str) -> RefreshRecord | None:
        row = await tx.fetch_one(
            "SELECT r.family_id, r.user_id, r.expires_at, r.spent_at, f.revoked_at, f.device_id "
            "FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id "
            "WHERE r.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        return RefreshRecord(
            family_id=int(row["family_id"]),
            user_id=int(row["user_id"]),
            expires_at=int(row["expires_at"]),
            spent_at=row["spent_at"],
            family_revoked=row["revoked_at"] is not None,
            device_id=row["device_id"],
        )

    async def spend_refresh(self, tx: Tx, token_hash: str, now_ms: int) -> bool:
        """Mark a refresh token spent; False if it was spent already (a race or a replay)."""
        changed = await tx.execute(
            "UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ? AND spent_at IS NULL",
            (now_ms, token_hash),
        )
        return changed == 1

    async def revoke_family(self, tx: Tx, family_id: int, reason: str, now_ms: int) -> None:
        await tx.execute(
            "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
            "WHERE id = ? AND revoked_at IS NULL",
            (now_ms, reason, family_id),
        )

    async def revoke_user(self, tx: Tx, user_id: int, reason: str, now_ms: int,
                          keep_family: int | None = None) -> list[int]:
        """Revoke every live family of a user but `keep_family`; the families revoked."""
        rows = await tx.fetch_all(
            "SELECT id FROM token_families WHERE user_id = ? AND revoked_at IS NULL AND id <> ?",
            (user_id, keep_family or 0),
        )
        await tx.execute(
            "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
            "WHERE user_id = ? AND revoked_at IS NULL AND id <> ?",
            (now_ms, reason, user_id, keep_family or 0),
        )
        return [int(r["id"]) for r in rows]

    async def revoked_after(self, at_ms: int, after_id: int, limit: int) -> list[Row]:
        """Families revoked after (at_ms, after_id), in (revoked_at, id) order: id, user_id,
        revoked_at, revoked_reason. One revocation can end many families in the same millisecond,
        hence the id in the position."""
        return await self._db.fetch_all(
            "SELECT id, user_id, revoked_at, revoked_reason FROM token_families "
            # A row-value comparison: both databases read it as one range of token_families_by_revoked,
            # already in order (an OR of the two cases is planned as two scans and a sort).
            "WHERE revoked_at IS NOT NULL AND (revoked_at, id) > (?, ?) ORDER BY revoked_at, id LIMIT ?",
            (at_ms, after_id, limit),
        )

    async def live_families(self, user_id: int, limit: int) -> list[Row]:
        """A user's signed-in sessions (families not revoked), newest first."""
        return await self._db.fetch_all(
            "SELECT id, device_id, created_at FROM token_families WHERE user_id = ? AND revoked_at IS NULL "
            "ORDER BY id DESC LIMIT ?", (user_id, limit))

    async def session_state(self, family_id: int) -> SessionState | None:
        row = await self._db.fetch_one(
            "SELECT f.revoked_at, u.disabled FROM token_families f "
            "JOIN users u ON u.id = f.user_id WHERE f.id = ?",
            (family_id,),
        )
        if row is None:
            return None
        return SessionState(revoked=row["revoked_at"] is not None, disabled=bool(row["disabled"]))

    # --- clean-up (the cleanup.sessions job) --------------------------------------------------

    async def revoked_before(self, before_ms: int, limit: int) -> list[int]:
        """Families revoked before `before_ms`, oldest first (token_families_by_revoked)."""
        rows = await self._db.fetch_all(
            "SELECT id FROM token_families WHERE revoked_at < ? ORDER BY revoked_at, id LIMIT ?", (before_ms, limit))
        return [int(r["id"]) for r in rows]

    async def remove_families(self, tx: Tx, family_ids: list[int]) -> int:
        """Delete these families and their refresh tokens; how many refresh tokens went."""
        tokens = 0
        for family_id in family_ids:
            tokens += await tx.execute("DELETE FROM refresh_tokens WHERE family_id = ?", (family_id,))
            await tx.execute("DELETE FROM token_families WHERE id = ?", (family_id,))
        return tokens

    async def expired_before(self, expired_ms: int, created_ms: int, limit: int) -> list[tuple[str, int]]:
        """(token hash, family id) of refresh tokens that expired before `expired_ms` and were
        issued before `created_ms`, oldest first (refresh_tokens_by_expiry)."""
        rows = await self._db.fetch_all(
            "SELECT token_hash, family_id FROM refresh_tokens WHERE expires_at < ? AND created_at < ? "
            "ORDER BY expires_at LIMIT ?", (expired_ms, created_ms, limit))
        return [(r["token_hash"], int(r["family_id"])) for r in rows]

    async def remove_refresh(self, tx: Tx, tokens: list[tuple[str, int]]) -> int:
        """Delete these refresh tokens, then each of their live families left without any
        (every access token of such a family was issued with one of them); families removed."""
        for token_hash, _ in tokens:
            await tx.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", (token_hash,))
        families = 0
        for family_id in sorted({family for _, family in tokens}):
            families += await tx.execute(
                "DELETE FROM token_families WHERE id = ? AND revoked_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = ?)", (family_id, family_id))
        return families
