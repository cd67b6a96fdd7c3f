"""Users and their devices."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import Database, Row, Tx, UniqueViolation


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    password_hash: str | None
    avatar_file_id: int | None
    is_admin: bool
    disabled: bool
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: Row) -> UserRecord:
        return cls(
            id=int(row["id"]),
            username=row["username"],
            display_name=row["display_name"],
            password_hash=row["password_hash"],
            avatar_file_id=row["avatar_file_id"],
            is_admin=bool(row["is_admin"]),
            disabled=bool(row["disabled"]),
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
        )


class UsernameTaken(Exception):
    pass


# The clear `phone` column of v0001 is never read nor written: phone numbers live encrypted in
# `phone_enc`, found by `phone_hash` (server/storage/stores/phones.py, v0011).
_COLUMNS = ("id, username, display_name, password_hash, avatar_file_id, is_admin, "
            "disabled, created_at, updated_at")


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user: UserRecord) -> None:
        """Insert a user; raises UsernameTaken if the username is in use."""
        try:
            await self._db.execute(
                "user_create",
                f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user.id, user.username, user.display_name, user.password_hash,
                 user.avatar_file_id, user.is_admin, user.disabled, user.created_at, user.updated_at),
            )
        except UniqueViolation:
            raise UsernameTaken(user.username) from None

    async def by_id(self, user_id: int) -> UserRecord | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return UserRecord.from_row(row) if row else None

    async def by_ids(self, user_ids: list[int]) -> dict[int, UserRecord]:
        if not user_ids:
            return {}
        marks = ", ".join("?" for _ in user_ids)
        rows = await self._db.fetch_all(f"SELECT {_COLUMNS} FROM users WHERE id IN ({marks})", user_ids)
        return {int(r["id"]): UserRecord.from_row(r) for r in rows}

    async def by_username(self, username: str) -> UserRecord | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,))
        return UserRecord.from_row(row) if row else None

    async def search(self, prefix: str, after: str, limit: int) -> list[UserRecord]:
        """Users whose username starts with `prefix`, after username `after`, by username.

        A range on the unique username index, so the search never scans the table.
        """
        low = max(prefix, after)
        op = ">" if after and after >= prefix else ">="
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM users WHERE username {op} ? AND username < ? "
            "ORDER BY username LIMIT ?",
            (low, prefix + "\U0010ffff", limit),
        )
        return [UserRecord.from_row(r) for r in rows]

    async def list_all(self, after: str, limit: int) -> list[UserRecord]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM users WHERE username > ? ORDER BY username LIMIT ?",
            (after, limit),
        )
        return [UserRecord.from_row(r) for r in rows]

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    async def update_profile(self, user_id: int, display_name: str, avatar_file_id: int | None,
                             now_ms: int) -> None:
        await self._db.execute(
            "user_update_profile",
            "UPDATE users SET display_name = ?, avatar_file_id = ?, updated_at = ? WHERE id = ?",
            (display_name, avatar_file_id, now_ms, user_id),
        )

    async def set_password_hash(self, tx: Tx, user_id: int, password_hash: str, now_ms: int) -> None:
        await tx.execute(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
            (password_hash, now_ms, user_id),
        )

    async def set_disabled(self, tx: Tx, user_id: int, disabled: bool, now_ms: int) -> int:
        return await tx.execute(
            "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?", (disabled, now_ms, user_id)
        )

    async def set_admin(self, tx: Tx, user_id: int, is_admin: bool, now_ms: int) -> int:
        return await tx.execute(
            "UPDATE users SET is_admin = ?, updated_at = ? WHERE id = ?", (is_admin, now_ms, user_id)
        )

    async def devices(self, user_id: int, limit: int) -> list[Row]:
        """A user's devices, most recently seen first (the console's user page)."""
        return await self._db.fetch_all(
            "SELECT id, name, platform, created_at, last_seen_at FROM devices WHERE user_id = ? "
            "ORDER BY last_seen_at DESC LIMIT ?", (user_id, limit))

    async def admins(self, limit: int) -> list[int]:
        """Ids of up to `limit` enabled admin accounts (to keep at least one)."""
        rows = await self._db.fetch_all(
            "SELECT id FROM users WHERE is_admin = TRUE AND disabled = FALSE LIMIT ?", (limit,))
        return [int(r["id"]) for r in rows]

    async def touch_device(self, tx: Tx, user_id: int, device_id: str, name: str, platform: str,
                           now_ms: int, ip: str = "") -> None:
        """Create or update a device at sign-in; an empty `ip` (not known) keeps the last one."""
        await tx.execute(
            "INSERT INTO devices (user_id, id, name, platform, created_at, last_seen_at, ip) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, id) DO UPDATE SET "
            "name = excluded.name, platform = excluded.platform, last_seen_at = excluded.last_seen_at, "
            "ip = COALESCE(NULLIF(excluded.ip, ''), devices.ip)",
            (user_id, device_id, name, platform, now_ms, now_ms, ip),
        )

    async def record_failure(self, tx: Tx, user_id: int, now_ms: int, window_ms: int) -> None:
        await tx.execute("DELETE FROM login_failures WHERE user_id = ? AND at < ?",
                         (user_id, now_ms - window_ms))
        await tx.execute("INSERT INTO login_failures (user_id, at) VALUES (?, ?)", (user_id, now_ms))

    async def recent_failures(self, user_id: int, since_ms: int) -> list[int]:
        """The times of this user's failed logins since `since_ms`, oldest first."""
        rows = await self._db.fetch_all(
            "SELECT at FROM login_failures WHERE user_id = ? AND at >= ? ORDER BY at",
            (user_id, since_ms),
        )
        return [int(r["at"]) for r in rows]

    async def clear_failures(self, tx: Tx, user_id: int) -> None:
        await tx.execute("DELETE FROM login_failures WHERE user_id = ?", (user_id,))

    async def forget_failures_before(self, before_ms: int) -> int:
        """Delete failed logins older than `before_ms` (past the lock window); how many."""
        return await self._db.execute("login_failures_forget", "DELETE FROM login_failures WHERE at < ?",
                                      (before_ms,))
