"""Reading and editing user profiles."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..auth.passwords import verify_password
from ..auth.service import AuthService, check_display_name
from ..errors import LuckyError, not_found, validation_failed
from ..clock import Clock
from ..storage import Database
from ..storage.stores.users import UserRecord, UserStore


@dataclass(frozen=True)
class Page:
    items: list[UserRecord]
    next_cursor: str | None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str:
    if not cursor:
        return ""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise validation_failed("cursor", "not a cursor this server issued") from None


class UserService:
    def __init__(self, db: Database, auth: AuthService, clock: Clock) -> None:
        self._users = UserStore(db)
        self._auth = auth
        self._clock = clock

    async def get(self, user_id: int) -> UserRecord:
        user = await self._users.by_id(user_id)
        if user is None:
            raise not_found("No user has that id.")
        return user

    async def by_username(self, username: str) -> UserRecord:
        user = await self._users.by_username(username.strip().lower())
        if user is None:
            raise not_found(f"No user is named {username!r}.")
        return user

    async def search(self, query: str, cursor: str | None, limit: int) -> Page:
        """Users whose username starts with `query` (case-insensitive), by username."""
        after = decode_cursor(cursor)
        prefix = query.strip().lower()
        rows = await self._users.search(prefix, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(rows[-1].username) if more and rows else None)

    async def list_all(self, cursor: str | None, limit: int) -> Page:
        after = decode_cursor(cursor)
        rows = await self._users.list_all(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(rows[-1].username) if more and rows else None)

    async def update_me(self, user_id: int, family_id: int, *, display_name: str | None = None,
                        avatar_file_id: int | None = None, avatar_given: bool = False,
                        password: str | None = None, old_password: str | None = None) -> UserRecord:
        """Edit one's own profile; a new password needs the old one and ends other sessions."""
        user = await self.get(user_id)
        if password is not None:
            if old_password is None:
                raise validation_failed("old_password", "required to set a new password")
            if not await verify_password(old_password, user.password_hash):
                raise LuckyError(401, "invalid_credentials", "The old password is wrong.")
        name = check_display_name(display_name) if display_name is not None else user.display_name
        avatar = user.avatar_file_id
        if avatar_given:
            if avatar_file_id is not None:
                # Files arrive with the files issue; until then no file id can exist.
                raise not_found("No file has that id; upload it first with POST /api/v1/files.")
            avatar = None
        if password is not None:
            await self._auth.set_password(user_id, password, actor_id=user_id, keep_family=family_id)
        if name != user.display_name or avatar != user.avatar_file_id:
            await self._users.update_profile(user_id, name, avatar, self._clock.now_ms())
        return await self.get(user_id)

    async def count(self) -> int:
        return await self._users.count()
