"""How an SMS code reaches a phone: `log` (development) or `webhook` (a signed POST).

A sender writes what it must in the transaction that stores the code, and acts after the
commit: the `log` sender logs the code then; the `webhook` sender writes a `deliveries` row of
kind `sms` (its JSON body `{"phone", "code"}` encrypted with the personal-data key, opened only
to post it) and wakes the delivery sender, which posts it signed and retries it with backoff
like offline push (server/outbox/deliveries.py). The row is deleted once the gateway took it,
and unsent once the code has expired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import orjson

from ..config import AuthConfig
from ..ids import Snowflake
from ..outbox.deliveries import WebhookTarget
from ..storage import Tx
from ..storage.stores.outbox import DeliveryStore
from .pii import PiiVault

log = logging.getLogger(__name__)

SMS_KIND = "sms"
SMS_BODY_CONTEXT = "deliveries.sms"


class SmsSender(Protocol):
    async def in_transaction(self, tx: Tx, phone: str, code: str, now_ms: int) -> None:
        """Write what sending needs, in the transaction that stores the code."""

    def committed(self, phone: str, code: str) -> None:
        """The code is stored: send it (or wake what sends it)."""


class LogSender:
    """Development: the code goes to the server's log, where a developer (or a test) reads it."""

    async def in_transaction(self, tx: Tx, phone: str, code: str, now_ms: int) -> None:
        return None

    def committed(self, phone: str, code: str) -> None:
        log.warning("sms code for %s: %s", phone, code)


class WebhookSender:
    """A `deliveries` row per code, posted by the delivery sender to `auth.sms_webhook_url`."""

    def __init__(self, store: DeliveryStore, ids: Snowflake, vault: PiiVault, wake: Callable[[], None]) -> None:
        self._store = store
        self._ids = ids
        self._vault = vault
        self._wake = wake

    async def in_transaction(self, tx: Tx, phone: str, code: str, now_ms: int) -> None:
        body = orjson.dumps({"phone": phone, "code": code}).decode()
        await self._store.add(tx, [(self._ids.next_id(), SMS_KIND, self._vault.encrypt(body, SMS_BODY_CONTEXT))],
                              now_ms)

    def committed(self, phone: str, code: str) -> None:
        self._wake()


def sms_target(config: AuthConfig, vault: PiiVault) -> WebhookTarget:
    """Where `sms` deliveries go: empty unless `auth.sms_provider = webhook`."""
    url = config.sms_webhook_url if config.sms_provider == "webhook" else ""
    return WebhookTarget(url, config.sms_webhook_secret, ttl_ms=config.sms_code_ttl_s * 1000,
                         unseal=lambda stored: vault.decrypt(stored, SMS_BODY_CONTEXT).encode())
