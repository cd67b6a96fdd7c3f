"""Phone numbers of users (encrypted, found by keyed hash) and SMS sign-in codes.

The store sees only what server/auth/pii.py made of a number: a ciphertext and lookup hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import Database, Tx, UniqueViolation

HOUR_MS = 3_600_000


class PhoneTaken(Exception):
    """Another account holds this phone number."""


@dataclass(frozen=True)
class StoredPhone:
    user_id: int
    phone_enc: str
    phone_hash: str


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class PhoneStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- users' phones ------------------------------------------------------------------

    async def user_with(self, phone_hashes: Sequence[str]) -> int | None:
        """The id of the user whose phone has one of these lookup hashes."""
        row = await self._db.fetch_one(
            f"SELECT id FROM users WHERE phone_hash IN ({_marks(phone_hashes)})", list(phone_hashes))
        return int(row["id"]) if row else None

    async def phone_of(self, user_id: int) -> str | None:
        """The user's phone ciphertext, or None."""
        row = await self._db.fetch_one("SELECT phone_enc FROM users WHERE id = ?", (user_id,))
        return str(row["phone_enc"]) if row and row["phone_enc"] is not None else None

    async def set_phone(self, tx: Tx, user_id: int, phone_enc: str | None, phone_hash: str | None,
                        now_ms: int) -> None:
        """Bind (or with None, unbind) a phone; `PhoneTaken` if another account holds it (the
        unique index decides, so two binds racing cannot both win)."""
        try:
            await tx.execute("UPDATE users SET phone_enc = ?, phone_hash = ?, updated_at = ? WHERE id = ?",
                             (phone_enc, phone_hash, now_ms, user_id))
        except UniqueViolation:
            raise PhoneTaken() from None

    async def phones_after(self, after_id: int, limit: int) -> list[StoredPhone]:
        """Users with a phone, by id after `after_id`: a key rotation's batches."""
        rows = await self._db.fetch_all(
            "SELECT id, phone_enc, phone_hash FROM users WHERE phone_hash IS NOT NULL AND id > ? "
            "ORDER BY id LIMIT ?", (after_id, limit))
        return [StoredPhone(int(r["id"]), str(r["phone_enc"]), str(r["phone_hash"])) for r in rows]

    async def rewrite(self, rows: Sequence[tuple[int, str, str, str]]) -> int:
        """(user_id, old_enc, new_enc, new_hash): each row changed only if it still holds
        `old_enc` (a bind or unbind meanwhile wins); how many were rewritten."""

        async def write(tx: Tx) -> int:
            changed = 0
            for user_id, old_enc, new_enc, new_hash in rows:
                changed += await tx.execute(
                    "UPDATE users SET phone_enc = ?, phone_hash = ? WHERE id = ? AND phone_enc = ?",
                    (new_enc, new_hash, user_id, old_enc))
            return changed

        return await self._db.transaction("phones_rewrite", write)

    # --- SMS codes ------------------------------------------------------------------------

    async def put_code(self, tx: Tx, phone_hash: str, code_hash: str, tries: int, now_ms: int,
                       expires_at: int, resend_ms: int) -> bool:
        """Store the phone's one live code, replacing an older one unless that was sent less
        than `resend_ms` ago (the cooldown, decided in one statement: two requests racing
        cannot both send). False if the cooldown held."""
        changed = await tx.execute(
            "INSERT INTO sms_codes (phone_hash, code_hash, tries_left, sent_at, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (phone_hash) DO UPDATE SET code_hash = excluded.code_hash, "
            "tries_left = excluded.tries_left, sent_at = excluded.sent_at, expires_at = excluded.expires_at "
            "WHERE sms_codes.sent_at <= ?",
            (phone_hash, code_hash, tries, now_ms, expires_at, now_ms - resend_ms))
        return changed > 0

    async def take_try(self, tx: Tx, phone_hash: str, now_ms: int) -> str | None:
        """Count one try against the phone's live code, if it has one unexpired with tries
        left, and return its hash (None: no usable code). The try is taken before the code is
        compared, in one statement, so concurrent guesses cannot exceed the tries."""
        row = await tx.fetch_one(
            "UPDATE sms_codes SET tries_left = tries_left - 1 "
            "WHERE phone_hash = ? AND tries_left > 0 AND expires_at > ? RETURNING code_hash",
            (phone_hash, now_ms))
        return str(row["code_hash"]) if row else None

    async def sent_at(self, phone_hash: str) -> int | None:
        row = await self._db.fetch_one("SELECT sent_at FROM sms_codes WHERE phone_hash = ?", (phone_hash,))
        return int(row["sent_at"]) if row else None

    async def spend_code(self, tx: Tx, phone_hash: str, code_hash: str) -> bool:
        """Delete the live code if it is still this one: True for exactly one caller."""
        return await tx.execute("DELETE FROM sms_codes WHERE phone_hash = ? AND code_hash = ?",
                                (phone_hash, code_hash)) > 0

    async def record_send(self, tx: Tx, phone_hash: str, ip_hash: str, now_ms: int) -> None:
        await tx.execute("DELETE FROM sms_sends WHERE at <= ?", (now_ms - HOUR_MS,))
        await tx.execute("DELETE FROM sms_codes WHERE expires_at <= ?", (now_ms,))
        await tx.execute("INSERT INTO sms_sends (phone_hash, ip_hash, at) VALUES (?, ?, ?)",
                         (phone_hash, ip_hash, now_ms))

    async def sends_since(self, column: str, value: str, since_ms: int) -> list[int]:
        """The times of the codes sent to a phone (`phone_hash`) or from an IP (`ip_hash`)
        since `since_ms`, oldest first."""
        assert column in ("phone_hash", "ip_hash")
        rows = await self._db.fetch_all(
            f"SELECT at FROM sms_sends WHERE {column} = ? AND at > ? ORDER BY at", (value, since_ms))
        return [int(r["at"]) for r in rows]
