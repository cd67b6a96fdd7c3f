"""Accounts and their phone numbers: signing in by SMS code, binding and unbinding a phone.

A phone is stored encrypted (`users.phone_enc`, bound to its row by the associated data) and
found by its keyed hash (`users.phone_hash`); see server/auth/pii.py. Answers (docs/protocol.md):
a wrong, expired, used-up or never-sent code is 401 `invalid_credentials` whatever the phone,
so asking about a phone without its code tells nothing; only the holder of a right code learns
that no account has the number (403 `registration_closed` without `auth.sms_signup`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..clock import Clock
from ..config import AuthConfig
from ..errors import LuckyError, validation_failed
from ..ids import Snowflake
from ..outbox.deliveries import DeliveryService
from ..storage import Database, Tx
from ..storage.stores.phones import PhoneStore, PhoneTaken
from ..storage.stores.users import UserRecord, UserStore
from .phones import mask_phone, phone_context
from .pii import PiiVault, Undecryptable
from .service import AuthService, Device, TokenSet
from .sms import PHONE_HASH_CONTEXT, SmsCodes, wrong_code
from .sms_senders import LogSender, SmsSender, WebhookSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmsSignIn:
    tokens: TokenSet
    created: bool  # the account was created by this sign-in (201)


class PhoneAccounts:
    def __init__(self, db: Database, config: AuthConfig, clock: Clock, ids: Snowflake, vault: PiiVault,
                 auth: AuthService, codes: SmsCodes) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._ids = ids
        self._vault = vault
        self._auth = auth
        self.codes = codes
        self._store = PhoneStore(db)
        self._users = UserStore(db)

    async def request_code(self, raw_phone: str, ip: str) -> tuple[str, int, int]:
        """Send a code (for signing in or binding); (E.164, expires_in, resend_in)."""
        await self._auth.check_ip(ip)
        e164 = self.codes.normalize(raw_phone)
        issued = await self.codes.issue(e164, ip)
        return e164, issued.expires_in, issued.resend_in

    async def sign_in(self, raw_phone: str, code: str, device: Device, ip: str) -> SmsSignIn:
        """Sign in with a code; with `auth.sms_signup` a phone no account holds gets a new one."""
        await self._auth.check_ip(ip)
        e164 = self.codes.normalize(raw_phone)
        if not await self.codes.spend(e164, code):
            raise wrong_code()
        user_id = await self.holder(e164)
        created = False
        if user_id is None:
            if not self._config.sms_signup:
                raise LuckyError(403, "registration_closed",
                                 "No account has this phone number and this server does not create accounts by "
                                 "SMS; sign in another way and bind the number to your account.")
            user_id, created = await self._create_for(e164), True
        user = await self._users.by_id(user_id)
        if user is None:
            raise wrong_code()
        if user.disabled:
            raise LuckyError(403, "forbidden", "This account is disabled; contact the server's operator.")
        tokens = await self._db.transaction("sms_sign_in", lambda tx: self._auth.start_session_in(tx, user, device, ip))
        log.info("user %s signed in by SMS code%s", user.id, " (account created)" if created else "")
        return SmsSignIn(tokens, created)

    async def _create_for(self, e164: str) -> int:
        user: UserRecord = await self._auth.create_user(f"u{self._ids.next_id()}", None, mask_phone(e164))
        try:
            await self._db.transaction("phone_bind", lambda tx: self._write(tx, user.id, e164))
        except PhoneTaken:  # another sign-up for this phone won a race (with another code)
            raise LuckyError(409, "conflict", "An account was just created for this phone number; sign in again.",
                             {"field": "phone"}) from None
        return user.id

    async def bind(self, user_id: int, raw_phone: str, code: str) -> str:
        """Bind the phone a code was sent to to `user_id` (409 if another account holds it);
        the masked number. A wrong code is 422 on `code` (the caller is signed in: a 401
        would read as a dead session)."""
        e164 = self.codes.normalize(raw_phone)
        if not await self.codes.spend(e164, code):
            raise validation_failed("code", "wrong or expired code; request a new one")
        holder = await self.holder(e164)
        if holder is not None and holder != user_id:
            raise LuckyError(409, "conflict", "Another account has this phone number.", {"field": "phone"})
        try:
            await self._db.transaction("phone_bind", lambda tx: self._write(tx, user_id, e164))
        except PhoneTaken:
            raise LuckyError(409, "conflict", "Another account has this phone number.", {"field": "phone"}) from None
        log.info("user %s bound a phone number", user_id)
        return mask_phone(e164)

    async def unbind(self, user_id: int) -> None:
        now = self._clock.now_ms()
        await self._db.transaction("phone_unbind", lambda tx: self._store.set_phone(tx, user_id, None, None, now))

    async def holder(self, e164: str) -> int | None:
        """The account holding this number (under any listed hash key)."""
        return await self._store.user_with(self._vault.lookup_hashes(e164, PHONE_HASH_CONTEXT))

    async def phone(self, user_id: int) -> str | None:
        """The user's number in E.164, or None."""
        stored = await self._store.phone_of(user_id)
        if stored is None:
            return None
        try:
            return self._vault.decrypt(stored, phone_context(user_id))
        except Undecryptable:
            log.error("user %s: the stored phone number does not decrypt with pii.keys (copy secrets/ from the "
                      "node that ran `lucky secrets rotate`)", user_id)
            return None

    async def masked(self, user_id: int) -> str | None:
        """The user's number as shown to them (`+86 138****8000`), or None."""
        phone = await self.phone(user_id)
        return mask_phone(phone) if phone else None

    async def _write(self, tx: Tx, user_id: int, e164: str) -> None:
        await self._store.set_phone(tx, user_id, self._vault.encrypt(e164, phone_context(user_id)),
                                    self._vault.lookup_hash(e164, PHONE_HASH_CONTEXT), self._clock.now_ms())


def build_phone_accounts(config: AuthConfig, db: Database, clock: Clock, ids: Snowflake, vault: PiiVault,
                         auth: AuthService, deliveries: DeliveryService) -> PhoneAccounts:
    """The SMS sign-in services with the configured sender (`auth.sms_provider`)."""
    sender: SmsSender = LogSender()
    if config.sms_provider == "webhook":
        sender = WebhookSender(deliveries.store, ids, vault, deliveries.wake)
    return PhoneAccounts(db, config, clock, ids, vault, auth, SmsCodes(db, config, clock, vault, sender))
