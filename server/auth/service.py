"""Sign-up, sign-in, token rotation, sign-out, and checking a presented access token.

Knows nothing of HTTP: the edges pass plain values (and the caller's IP for rate limits) and
get `TokenSet`s or `LuckyError`s back.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..clock import Clock
from ..config import AuthConfig
from ..errors import LuckyError, rate_limited, unauthorized, validation_failed
from ..ids import Snowflake
from ..shared_ratelimit import Limits
from ..storage import Database, Tx
from ..storage.stores.audit import AuditStore
from ..storage.stores.devices import DeviceStore
from ..storage.stores.tokens import TokenStore
from ..storage.stores.users import UserRecord, UserStore, UsernameTaken
from .keyring import Keyring
from .passwords import PasswordHasher
from .revocations import RevocationFeed, kick_reason
from .tokens import AccessClaims, TokenCodec, TokenInvalid, hash_refresh_token, new_refresh_token

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
MAX_DISPLAY_NAME = 64
MAX_DEVICE_FIELD = 128

# Called with (user_id, family_ids, reason) after sessions are revoked, so that the WebSocket
# gateway can kick the devices holding them, and after an account is disabled or enabled
# (then family_ids may be empty), so that caches of who is disabled forget the user.
RevocationListener = Callable[[int, list[int], str], Awaitable[None]]


@dataclass(frozen=True)
class Device:
    id: str = ""
    name: str = ""
    platform: str = ""


DAY_MS = 86_400_000
CLEANUP_BATCH = 500


@dataclass(frozen=True)
class SessionCleanup:
    """What `AuthService.cleanup_sessions` removed."""

    revoked_families: int
    expired_families: int
    refresh_tokens: int
    login_failures: int

    def summary(self) -> str:
        return (f"removed {self.revoked_families + self.expired_families} token families "
                f"({self.revoked_families} revoked, {self.expired_families} expired), "
                f"{self.refresh_tokens} refresh tokens, {self.login_failures} old login failures")


@dataclass(frozen=True)
class TokenSet:
    user: UserRecord
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class DeviceView:
    id: str
    name: str
    platform: str
    created_at: int
    last_seen_at: int


@dataclass(frozen=True)
class SessionView:
    family_id: int
    device_id: str
    created_at: int


@dataclass(frozen=True)
class AccountView:
    devices: list[DeviceView]
    sessions: list[SessionView]  # token families not revoked


def wrong_credentials() -> LuckyError:
    return LuckyError(401, "invalid_credentials", "Wrong username or password.")


def normalize_username(raw: str) -> str:
    username = raw.strip().lower()
    if not USERNAME_RE.fullmatch(username):
        raise validation_failed("username", "3 to 32 characters of a-z, 0-9, _ . -")
    return username


def check_password_rules(password: str, field: str = "password") -> None:
    if not 8 <= len(password) <= 128:
        raise validation_failed(field, "8 to 128 characters")


def has_control_chars(text: str) -> bool:
    """True if `text` holds a control character such as NUL, which PostgreSQL cannot store."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def check_display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise validation_failed("display_name", f"1 to {MAX_DISPLAY_NAME} characters")
    if has_control_chars(name):
        raise validation_failed("display_name", "no control characters")
    return name


class AuthService:
    def __init__(self, db: Database, config: AuthConfig, keyring: Keyring, clock: Clock,
                 ids: Snowflake, revocation_listeners: Sequence[RevocationListener], limits: Limits) -> None:
        """`revocation_listeners` hear every revocation (logout, a disabled account, a reused
        refresh token, and those other processes made): they close the sockets it covers."""
        self._db = db
        self._config = config
        self._keyring = keyring
        self._clock = clock
        self._ids = ids
        self._users = UserStore(db)
        self._tokens = TokenStore(db)
        self._devices = DeviceStore(db)
        self._audit = AuditStore(db)
        self._codec = TokenCodec(keyring.jwt_key)
        self._ip_limiter = limits.limiter("auth_ip", config.ip_rate_per_min, 60.0)  # shared by the nodes
        self._passwords = PasswordHasher()
        self.revocation_listeners = tuple(revocation_listeners)
        # Revocations made by other processes, polled by the server (`lucky serve`).
        self.revocations = RevocationFeed(self._tokens, clock, self._announce)

    def close(self) -> None:
        """Stop the password threads (a hash still running finishes on its own)."""
        self._passwords.close()

    # --- the public key for password transport -------------------------------------------

    def public_key(self) -> dict[str, str]:
        return {"kid": self._keyring.kid, "alg": "RSA-OAEP-256", "pem": self._keyring.public_pem}

    def resolve_password(self, password: str | None, encrypted: str | None, field: str = "password") -> str:
        """The plain password from either form a client may send it in.

        `field` names the plain field (`password`, `old_password`); its encrypted twin is
        `encrypted_<field>`, which wins when both are sent.
        """
        if encrypted is not None:
            plain = self._keyring.decrypt_password(encrypted)
            if plain is None:
                raise validation_failed(
                    f"encrypted_{field}",
                    "not base64 of RSA-OAEP (SHA-256) ciphertext under GET /api/v1/auth/public-key",
                )
            return plain
        if password is None:
            raise validation_failed(field, f"required (or encrypted_{field})")
        return password

    # --- rate limits ---------------------------------------------------------------------

    async def check_ip(self, ip: str) -> None:
        """Count one auth request from `ip`; 429 past `auth.ip_rate_per_min` (on every node together)."""
        wait = await self._ip_limiter.hit(ip)
        if wait:
            raise rate_limited(wait, "Too many sign-in requests from this address; try again later.")

    # --- accounts ------------------------------------------------------------------------

    async def create_user(self, username: str, password: str | None, display_name: str | None = None,
                          *, is_admin: bool = False, actor_id: int | None = None) -> UserRecord:
        """Create an account (no tokens): for registration, the CLI and the console."""
        username = normalize_username(username)
        if password is not None:
            check_password_rules(password)
        name = check_display_name(display_name) if display_name is not None else username
        now = self._clock.now_ms()
        record = UserRecord(
            id=self._ids.next_id(),
            username=username,
            display_name=name,
            password_hash=await self._passwords.hash(password) if password is not None else None,
            avatar_file_id=None,
            is_admin=is_admin,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            await self._users.create(record)
        except UsernameTaken:
            raise LuckyError(409, "conflict", f"The username {username!r} is taken; choose another.",
                             {"field": "username"}) from None
        if actor_id is not None or is_admin:
            await self._db.transaction("audit_user_add", lambda tx: self._audit.record(
                tx, self._ids.next_id(), now, actor_id, "user.add", str(record.id),
                {"username": username, "admin": is_admin}))
        log.info("created user %s (%s)", record.id, username)
        return record

    async def register(self, username: str, password: str | None, display_name: str | None, device: Device,
                       ip: str, *, encrypted_password: str | None = None) -> TokenSet:
        """Create an account and sign in; the password plain or as `encrypted_password`."""
        await self.check_ip(ip)  # before the RSA decryption, so the limit also bounds that work
        if not self._config.registration_open:
            raise LuckyError(403, "registration_closed",
                             "This server does not accept new sign-ups; ask its operator for an account.")
        password = self.resolve_password(password, encrypted_password)
        user = await self.create_user(username, password, display_name)
        return await self._start_session(user, device, ip=ip)

    async def login(self, username: str, password: str | None, device: Device, ip: str, *,
                    encrypted_password: str | None = None) -> TokenSet:
        """Sign in with a password, plain or as `encrypted_password`."""
        await self.check_ip(ip)  # before the RSA decryption, so the limit also bounds that work
        password = self.resolve_password(password, encrypted_password)
        user = await self.verify_credentials(username, password)
        if user.disabled:
            raise LuckyError(403, "forbidden", "This account is disabled; contact the server's operator.")
        return await self._start_session(user, device, clear_failures=True, ip=ip)

    async def verify_credentials(self, username: str, password: str) -> UserRecord:
        """The account whose username and password these are (disabled or not), under the
        per-account failure lock; 401 `invalid_credentials` otherwise, an unknown username at
        the same cost as a wrong password. For sign-in and the console's sign-in."""
        username = username.strip().lower()
        # A name no account can have is not looked up (a NUL would make PostgreSQL fail).
        user = await self._users.by_username(username) if USERNAME_RE.fullmatch(username) else None
        if user is None:
            await self._passwords.verify(password, None)  # same cost as a real check
            raise wrong_credentials()
        if not await self.check_password(user, password):
            raise wrong_credentials()
        return user

    async def check_password(self, user: UserRecord, password: str) -> bool:
        """Whether `password` is `user`'s, under the per-account lock.

        Every check of a user's own password goes through here (sign-in, a password change),
        so a stolen access token cannot be used to guess the password either: after
        `auth.failures_before_lock` wrong ones in `auth.lock_window_s`, 429 until the oldest
        leaves the window, even for the right password.
        """
        now = self._clock.now_ms()
        window_ms = self._config.lock_window_s * 1000
        limit = self._config.failures_before_lock
        if limit > 0:
            # A failure exactly `window` old has left the window: Retry-After is then over.
            failures = await self._users.recent_failures(user.id, now - window_ms + 1)
            if len(failures) >= limit:
                retry_after = max(1, (failures[-limit] + window_ms - now + 999) // 1000)
                raise LuckyError(429, "rate_limited",
                                 "Too many failed sign-ins for this account; try again later.",
                                 {"retry_after": retry_after}, retry_after=retry_after)
        if await self._passwords.verify(password, user.password_hash):
            return True
        if limit > 0:
            await self._db.transaction("login_failure", lambda tx: self._users.record_failure(
                tx, user.id, now, window_ms))
        return False

    async def _start_session(self, user: UserRecord, device: Device, *,
                             clear_failures: bool = False, ip: str = "") -> TokenSet:
        async def write(tx: Tx) -> TokenSet:
            if clear_failures:
                await self._users.clear_failures(tx, user.id)
            return await self.start_session_in(tx, user, device, ip)

        return await self._db.transaction("session_start", write)

    async def start_session_in(self, tx: Tx, user: UserRecord, device: Device, ip: str) -> TokenSet:
        """Write a new signed-in session (its device, token family and first refresh token) in
        `tx` and return its token set: for a sign-in that must commit together with something
        else (a QR session's one-time claim). Without `device.id` the device is a new one."""
        now = self._clock.now_ms()
        family_id = self._ids.next_id()
        device_id = device.id or str(family_id)
        refresh = new_refresh_token()
        await self._users.touch_device(tx, user.id, device_id, device.name, device.platform, now, ip)
        await self._tokens.create_family(tx, family_id, user.id, device_id, now)
        await self._tokens.add_refresh(tx, hash_refresh_token(refresh), family_id, user.id, now,
                                       now + self._config.refresh_ttl_s * 1000)
        return self._token_set(user, family_id, device_id, refresh)

    def _token_set(self, user: UserRecord, family_id: int, device_id: str, refresh: str) -> TokenSet:
        access = self._codec.issue(user.id, family_id, device_id, self._clock.now_ms() // 1000,
                                   self._config.access_ttl_s)
        return TokenSet(user, access, refresh, self._config.access_ttl_s)

    async def refresh(self, refresh_token: str, ip: str) -> TokenSet:
        """Rotate: spend `refresh_token` and issue a new set in the same family.

        Presenting a spent token means it was stolen or replayed: the whole family is revoked,
        its access tokens included, exactly like a logout.
        """
        await self.check_ip(ip)
        now = self._clock.now_ms()
        token_hash = hash_refresh_token(refresh_token)
        fresh = new_refresh_token()
        denied = LuckyError(401, "unauthorized", "The refresh token is not valid; sign in again.")

        async def rotate(tx: Tx) -> tuple[str, int, int, str]:
            record = await self._tokens.get_refresh(tx, token_hash)
            if record is None or record.family_revoked or record.expires_at <= now:
                return ("denied", 0, 0, "")
            if record.spent_at is not None or not await self._tokens.spend_refresh(tx, token_hash, now):
                await self._tokens.revoke_family(tx, record.family_id, "refresh_reuse", now)
                return ("reused", record.user_id, record.family_id, "")
            await self._tokens.add_refresh(tx, hash_refresh_token(fresh), record.family_id,
                                           record.user_id, now, now + self._config.refresh_ttl_s * 1000)
            await self._devices.seen(tx, record.user_id, record.device_id, now, ip)  # GET /me/devices
            return ("ok", record.user_id, record.family_id, record.device_id)

        outcome, user_id, family_id, device_id = await self._db.transaction("token_refresh", rotate)
        if outcome == "reused":
            log.warning("refresh token reuse for user %s: family %s revoked", user_id, family_id)
            await self._notify(user_id, [family_id], kick_reason("refresh_reuse"))
            raise denied
        if outcome != "ok":
            raise denied
        user = await self._users.by_id(user_id)
        if user is None or user.disabled:
            raise denied
        return self._token_set(user, family_id, device_id, fresh)

    async def logout(self, claims: AccessClaims) -> None:
        """End the session: this access token and its refresh family stop working at once."""
        now = self._clock.now_ms()
        await self._db.transaction("logout", lambda tx: self._tokens.revoke_family(
            tx, claims.family_id, "logout", now))
        await self._notify(claims.user_id, [claims.family_id], kick_reason("logout"))

    async def authenticate(self, token: str | None) -> AccessClaims:
        """The claims of a live access token; 401 if missing, forged, expired or revoked."""
        if not token:
            raise unauthorized()
        try:
            claims = self._codec.decode(token, self._clock.now_ms() // 1000)
        except TokenInvalid as exc:
            raise unauthorized(str(exc)) from None
        state = await self._tokens.session_state(claims.family_id)
        if state is None or state.revoked:
            raise unauthorized("This session was signed out; sign in again.")
        if state.disabled:
            raise unauthorized("This account is disabled; contact the server's operator.")
        return claims

    # --- administration (CLI and console) ----------------------------------------------------

    async def set_password(self, user_id: int, password: str, *, actor_id: int | None = None,
                           keep_family: int | None = None) -> None:
        """Set a new password and sign out every other session of the user."""
        check_password_rules(password)
        password_hash = await self._passwords.hash(password)
        now = self._clock.now_ms()

        async def write(tx: Tx) -> list[int]:
            await self._users.set_password_hash(tx, user_id, password_hash, now)
            # The device that changed its own password stays signed in.
            families = await self._tokens.revoke_user(tx, user_id, "password_changed", now, keep_family)
            await self._audit.record(tx, self._ids.next_id(), now, actor_id, "user.passwd", str(user_id))
            return families

        families = await self._db.transaction("user_passwd", write)
        await self._notify(user_id, families, kick_reason("password_changed"))

    async def set_disabled(self, user_id: int, disabled: bool, *, actor_id: int | None = None) -> None:
        """Disable (ending every session) or enable an account; listeners hear of either."""
        now = self._clock.now_ms()

        async def write(tx: Tx) -> list[int]:
            await self._users.set_disabled(tx, user_id, disabled, now)
            families = await self._tokens.revoke_user(tx, user_id, "disabled", now) if disabled else []
            await self._audit.record(tx, self._ids.next_id(), now, actor_id,
                                     "user.disable" if disabled else "user.enable", str(user_id))
            return families

        families = await self._db.transaction("user_disable", write)
        # Listeners hear of both directions, even with no session to end: caches of who is
        # disabled (the chat audience) must drop the user either way, or a re-enabled user
        # stays unreachable until a restart.
        await self._notify(user_id, families, kick_reason("disabled") if disabled else "account_enabled")

    async def force_logout(self, user_id: int, *, actor_id: int | None = None) -> int:
        now = self._clock.now_ms()

        async def write(tx: Tx) -> list[int]:
            families = await self._tokens.revoke_user(tx, user_id, "admin", now)
            await self._audit.record(tx, self._ids.next_id(), now, actor_id, "user.logout", str(user_id))
            return families

        families = await self._db.transaction("user_force_logout", write)
        await self._notify(user_id, families, kick_reason("admin"))
        return len(families)

    async def is_last_admin(self, user_id: int) -> bool:
        """Whether `user_id` is the only enabled admin account (the console will not demote it)."""
        return await self._users.admins(2) == [user_id]

    async def set_admin(self, user_id: int, is_admin: bool, *, actor_id: int | None = None) -> None:
        now = self._clock.now_ms()

        async def write(tx: Tx) -> None:
            await self._users.set_admin(tx, user_id, is_admin, now)
            await self._audit.record(tx, self._ids.next_id(), now, actor_id,
                                     "user.promote" if is_admin else "user.demote", str(user_id))

        await self._db.transaction("user_promote", write)

    async def account(self, user_id: int) -> AccountView:
        """A user's devices and signed-in sessions (the newest 100 of each), for operators."""
        devices = await self._users.devices(user_id, 100)
        families = await self._tokens.live_families(user_id, 100)
        return AccountView(
            [DeviceView(r["id"], r["name"], r["platform"], int(r["created_at"]), int(r["last_seen_at"]))
             for r in devices],
            [SessionView(int(r["id"]), r["device_id"], int(r["created_at"])) for r in families])

    # --- clean-up (the cleanup.sessions job) ------------------------------------------------

    async def cleanup_sessions(self, now_ms: int | None = None) -> SessionCleanup:
        """Remove what no request can use any more, in batches of `CLEANUP_BATCH` (each its own
        transaction, so the SQLite writer is never held long):

        - refresh tokens that expired over a day ago (and were issued over a day plus an
          access token's lifetime ago), and then each live family left without any: every
          access token of a family is issued with one of its refresh tokens, so none of them
          can still be valid;
        - families revoked over `max(a day, auth.access_ttl_s)` ago, with their tokens: until
          then a revoked family must stay, both so that an access token of it is refused as
          revoked and so that other nodes' revocation feeds (which look seconds back) see it;
        - failed logins older than `auth.lock_window_s` (no longer counted by the lock).
        """
        now = self._clock.now_ms() if now_ms is None else now_ms
        access_ms = self._config.access_ttl_s * 1000
        revoked = tokens = expired_families = 0
        while ids := await self._tokens.revoked_before(now - max(DAY_MS, access_ms), CLEANUP_BATCH):
            tokens += await self._db.transaction("sessions_cleanup_revoked",
                                                 functools.partial(self._tokens.remove_families, family_ids=ids))
            revoked += len(ids)
        while batch := await self._tokens.expired_before(now - DAY_MS, now - DAY_MS - access_ms, CLEANUP_BATCH):
            expired_families += await self._db.transaction("sessions_cleanup_expired",
                                                           functools.partial(self._tokens.remove_refresh, tokens=batch))
            tokens += len(batch)
        failures = await self._users.forget_failures_before(now - self._config.lock_window_s * 1000)
        report = SessionCleanup(revoked, expired_families, tokens, failures)
        if revoked or expired_families or tokens or failures:
            log.info("sessions clean-up: %s", report.summary())
        return report

    async def notify_revoked(self, user_id: int, families: list[int], revoked_reason: str) -> None:
        """Families revoked elsewhere (a device signed out): kick their sockets on this node
        and remember them, so that the revocation feed does not announce them again."""
        await self._notify(user_id, families, kick_reason(revoked_reason))

    async def _notify(self, user_id: int, families: list[int], reason: str) -> None:
        self.revocations.saw(families)
        await self._announce(user_id, families, reason)

    async def _announce(self, user_id: int, families: list[int], reason: str) -> None:
        for listener in self.revocation_listeners:
            try:
                await listener(user_id, families, reason)
            except Exception:  # a listener's failure must not undo a revocation
                log.exception("revocation listener failed for user %s", user_id)
