"""Reading and editing user profiles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from ..auth.service import USERNAME_RE, AuthService, check_display_name
from .. import cursors
from ..errors import LuckyError, not_found, validation_failed
from ..clock import Clock
from ..storage import Database
from ..storage.stores.users import UserRecord, UserStore

_USERNAME_CHARS = re.compile(r"[a-z0-9_.-]*")


@dataclass(frozen=True)
class Page:
    items: list[UserRecord]
    next_cursor: str | None


def encode_cursor(value: str) -> str:
    return cursors.encode_cursor("users", value)


def decode_cursor(cursor: str | None) -> str:
    """The username a cursor points after; 400 for anything this server cannot have issued."""
    if not cursor:
        return ""
    after = cursors.text_cursor(cursor, "users")
    if not USERNAME_RE.fullmatch(after):
        raise cursors.bad_cursor()
    return after


class PublicProfile(Protocol):
    """What a user object shows of a user (a UserRecord, or a row read for one purpose)."""

    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def avatar_file_id(self) -> int | None: ...
    @property
    def created_at(self) -> int: ...


def user_object(user: PublicProfile, public_url: str) -> dict[str, Any]:
    """A user as the protocol shapes it: `{"id", "username", "display_name", "avatar_url",
    "created_at"}` (the id as a string; no avatar: null)."""
    return {
        "id": str(user.id),
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": f"{public_url}/api/v1/files/{user.avatar_file_id}/content" if user.avatar_file_id else None,
        "created_at": user.created_at,
    }


class AvatarFiles(Protocol):
    async def use_as_user_avatar(self, user_id: int, file_id: int) -> int:
        """The id of a new avatar image made from the file, readable by every signed-in user
        (the file's own readers do not change); LuckyError unless the user may read it."""


class UserService:
    def __init__(self, db: Database, auth: AuthService, clock: Clock, files: AvatarFiles) -> None:
        self._users = UserStore(db)
        self._auth = auth
        self._clock = clock
        self.files = files

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
        if not _USERNAME_CHARS.fullmatch(prefix):
            return Page([], None)  # no username holds such a character: nothing to look up
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
            if not await self._auth.check_password(user, old_password):
                # 403, not 401: the access token is fine, and a client that refreshes and
                # retries on 401 would loop or sign the user out.
                raise LuckyError(403, "invalid_credentials", "The old password is wrong.",
                                 {"field": "old_password", "reason": "does not match"})
        name = check_display_name(display_name) if display_name is not None else user.display_name
        avatar = user.avatar_file_id
        if avatar_given:
            avatar = avatar_file_id
            if avatar_file_id is not None and avatar_file_id != user.avatar_file_id:
                # The profile shows an avatar image made from the file, never the file itself.
                avatar = await self.files.use_as_user_avatar(user_id, avatar_file_id)
        if password is not None:
            await self._auth.set_password(user_id, password, actor_id=user_id, keep_family=family_id)
        if name != user.display_name or avatar != user.avatar_file_id:
            await self._users.update_profile(user_id, name, avatar, self._clock.now_ms())
        return await self.get(user_id)

    async def count(self) -> int:
        return await self._users.count()
