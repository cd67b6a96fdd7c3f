"""SMS codes: issuing one (caps, cooldown, one live code per phone) and checking one (tries).

A code is 6 digits from `secrets`, stored only as an HMAC under the personal-data hash key,
keyed by the phone's lookup hash; it lives `auth.sms_code_ttl_s`, allows `auth.sms_code_tries`
guesses, and a new code for the phone replaces it (after `auth.sms_resend_s`). Every code sent
is counted per phone and per IP (both as keyed hashes) for the hourly caps. The same code
serves signing in and binding the phone to a signed-in account (server/auth/phone_accounts.py):
either way it proves that whoever holds it receives the phone's messages.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass

from ..clock import Clock
from ..config import AuthConfig
from ..errors import LuckyError, rate_limited, validation_failed
from ..storage import Database, Tx
from ..storage.stores.phones import HOUR_MS, PhoneStore
from .phones import normalize_phone
from .pii import PiiVault
from .sms_senders import SmsSender

PHONE_HASH_CONTEXT = "phone"
IP_HASH_CONTEXT = "ip"
CODE_HASH_CONTEXT = "sms-code"


@dataclass(frozen=True)
class CodeIssued:
    """What the client is told: the code's lifetime and when it may ask again (seconds)."""

    expires_in: int
    resend_in: int


class SmsCodes:
    def __init__(self, db: Database, config: AuthConfig, clock: Clock, vault: PiiVault, sender: SmsSender) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._vault = vault
        self._sender = sender
        self._store = PhoneStore(db)

    def normalize(self, raw: str) -> str:
        """The E.164 form of a typed number (422 `validation_failed` on `phone` otherwise)."""
        return normalize_phone(raw, self._config.sms_default_region)

    def phone_hash(self, e164: str) -> str:
        return self._vault.lookup_hash(e164, PHONE_HASH_CONTEXT)

    async def issue(self, e164: str, ip: str) -> CodeIssued:
        """Send a new code to the phone; 429 `rate_limited` (with Retry-After) within the
        resend cooldown or past an hourly cap. The per-IP auth limit is the caller's."""
        now = self._clock.now_ms()
        phone_hash = self.phone_hash(e164)
        ip_hash = self._vault.lookup_hash(ip, IP_HASH_CONTEXT)
        for column, value, cap, whom in (
                ("phone_hash", phone_hash, self._config.sms_per_phone_per_hour, "this phone number"),
                ("ip_hash", ip_hash, self._config.sms_per_ip_per_hour, "this address")):
            if cap <= 0:
                continue
            sent = await self._store.sends_since(column, value, now - HOUR_MS)
            if len(sent) >= cap:
                wait = max(1, math.ceil((sent[-cap] + HOUR_MS - now) / 1000))
                raise rate_limited(wait, f"Too many codes sent to {whom} in the last hour; try again later.")
        code = f"{secrets.randbelow(1_000_000):06d}"
        ttl_ms = self._config.sms_code_ttl_s * 1000
        resend_ms = self._config.sms_resend_s * 1000

        async def write(tx: Tx) -> bool:
            if not await self._store.put_code(tx, phone_hash, self._code_hash(phone_hash, code),
                                              self._config.sms_code_tries, now, now + ttl_ms, resend_ms):
                return False
            await self._store.record_send(tx, phone_hash, ip_hash, now)
            await self._sender.in_transaction(tx, e164, code, now)
            return True

        if not await self._db.transaction("sms_code_issue", write):
            sent_at = await self._store.sent_at(phone_hash)
            wait = max(1, math.ceil(((sent_at or now) + resend_ms - now) / 1000))
            raise rate_limited(wait, "A code was just sent to this phone number; wait before asking for another.")
        self._sender.committed(e164, code)
        return CodeIssued(self._config.sms_code_ttl_s, self._config.sms_resend_s)

    async def spend(self, e164: str, code: str) -> bool:
        """Whether `code` is the phone's live code; if so it is spent (it works once). A wrong
        code uses up one of the code's tries; once they are gone even the right code fails."""
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise validation_failed("code", "the 6 digits of the code sent by SMS")
        phone_hash = self.phone_hash(e164)
        now = self._clock.now_ms()

        async def check(tx: Tx) -> bool:
            live = await self._store.take_try(tx, phone_hash, now)
            if live is None or not hmac.compare_digest(live, self._code_hash(phone_hash, code)):
                return False
            return await self._store.spend_code(tx, phone_hash, live)

        return await self._db.transaction("sms_code_check", check)

    def _code_hash(self, phone_hash: str, code: str) -> str:
        return self._vault.lookup_hash(f"{phone_hash}:{code}", CODE_HASH_CONTEXT)


def wrong_code() -> LuckyError:
    return LuckyError(401, "invalid_credentials", "Wrong or expired code; request a new one.")
