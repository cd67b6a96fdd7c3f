"""Sign-in sessions of the operator console (admins only), stored server-side.

The browser holds a random session id in a cookie; the database holds its SHA-256, the user,
the session's CSRF token and its times (migration v0010), so a session works on every node and
ends everywhere at once. Knows nothing of HTTP: the console's edge passes the cookie's value
and the caller's IP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from ..clock import Clock
from ..config import ConsoleConfig
from ..errors import rate_limited
from ..shared_ratelimit import Limits
from ..storage import Database, Tx
from ..storage.stores.console import ConsoleSessionRow, ConsoleSessionStore
from ..storage.stores.users import UserRecord, UserStore
from .audit import AuditLog
from .service import AuthService, wrong_credentials

log = logging.getLogger(__name__)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleSession:
    """A live console session: whose, its CSRF token, and the flash message to show once."""

    id_hash: str
    user: UserRecord
    csrf: str
    created_at: int
    last_seen: int
    flash: str

    def csrf_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class ConsoleSessions:
    def __init__(self, db: Database, config: ConsoleConfig, clock: Clock, auth: AuthService,
                 audit: AuditLog, limits: Limits) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._auth = auth
        self._audit = audit
        self._store = ConsoleSessionStore(db)
        self._users = UserStore(db)
        self._by_ip = limits.limiter("console_ip", config.login_rate_per_min, 60.0)
        self._by_name = limits.limiter("console_name", config.login_rate_per_min, 60.0)

    async def sign_in(self, username: str, password: str, ip: str) -> tuple[str, ConsoleSession]:
        """Check an admin's password and open a session: (the id for the cookie, the session).

        Limited per IP and per username (`console.login_rate_per_min`), and by the account's
        failure lock. A non-admin or disabled account gets the same 401 as a wrong password,
        so the form tells a guesser nothing about which accounts are admins.
        """
        name = username.strip().lower()
        wait = max(await self._by_ip.hit(ip), await self._by_name.hit(name[:64]))
        if wait:
            raise rate_limited(wait, "Too many sign-in attempts; try again later.")
        user = await self._auth.verify_credentials(name, password)
        if not user.is_admin or user.disabled:
            raise wrong_credentials()
        now = self._clock.now_ms()
        session_id = secrets.token_urlsafe(32)
        row = ConsoleSessionRow(_hash(session_id), user.id, secrets.token_urlsafe(32), ip[:64], now, now, "")

        async def write(tx: Tx) -> None:
            # Sessions past their time are removed by each sign-in (a small table; last_seen is indexed).
            await self._store.delete_expired(tx, now - self._config.idle_timeout_s * 1000,
                                             now - self._config.lifetime_s * 1000)
            await self._store.create(tx, row)

        await self._db.transaction("console_sign_in", write)
        await self._audit.record(user.id, "console.login", str(user.id), {"ip": ip[:64]})
        log.info("console sign-in by user %s from %s", user.id, ip)
        return session_id, ConsoleSession(row.id_hash, user, row.csrf, now, now, "")

    async def resume(self, session_id: str | None) -> ConsoleSession | None:
        """The live session of a cookie's id; None if unknown, idle too long, too old, or its
        user is no longer an enabled admin (then the session is ended)."""
        if not session_id or len(session_id) > 128:
            return None
        row = await self._store.get(_hash(session_id))
        if row is None:
            return None
        now = self._clock.now_ms()
        user = await self._users.by_id(row.user_id)
        if (now - row.last_seen > self._config.idle_timeout_s * 1000
                or now - row.created_at > self._config.lifetime_s * 1000
                or user is None or not user.is_admin or user.disabled):
            await self._store.delete(row.id_hash)
            return None
        # last_seen is written at most every tenth of the idle timeout (and at most a minute
        # apart), not on every page view.
        if now - row.last_seen >= min(60_000, self._config.idle_timeout_s * 100):
            await self._store.touch(row.id_hash, now)
        return ConsoleSession(row.id_hash, user, row.csrf, row.created_at, now, row.flash)

    async def sign_out(self, session: ConsoleSession) -> None:
        await self._store.delete(session.id_hash)
        await self._audit.record(session.user.id, "console.logout", str(session.user.id))

    async def set_flash(self, session: ConsoleSession, message: str) -> None:
        """Keep a one-line message for the session's next page."""
        await self._store.set_flash(session.id_hash, message[:500])

    async def clear_flash(self, session: ConsoleSession) -> None:
        if session.flash:
            await self._store.set_flash(session.id_hash, "")
