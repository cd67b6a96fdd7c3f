"""A user's signed-in devices: listing them, signing one out, and noting when one was last seen.

A device is signed in while it has a token family that is not revoked. Signing it out revokes
every such family (`revoked_reason` "signed_out") in one transaction: its access and refresh
tokens are refused from then on (AuthService.authenticate and refresh read the family), its
sockets on this node get `kick` `signed_out` at once (the revocation listeners), and those on
other nodes within `auth.revocation_poll_s` (their revocation feed). Knows nothing of HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..clock import Clock
from ..errors import not_found
from ..ids import Snowflake
from ..storage import Database, Tx
from ..storage.stores.audit import AuditStore
from ..storage.stores.devices import DeviceStore
from .service import MAX_DEVICE_FIELD, AuthService, has_control_chars

log = logging.getLogger(__name__)

MAX_DEVICES = 100
SIGNED_OUT = "signed_out"


@dataclass(frozen=True)
class SignedInDevice:
    id: str
    name: str
    platform: str
    created_at: int
    last_seen_at: int
    ip: str


class DeviceService:
    def __init__(self, db: Database, clock: Clock, ids: Snowflake, auth: AuthService) -> None:
        self._db = db
        self._clock = clock
        self._ids = ids
        self._auth = auth
        self._devices = DeviceStore(db)
        self._audit = AuditStore(db)

    async def signed_in(self, user_id: int) -> list[SignedInDevice]:
        """The user's devices that have a live session, most recently seen first (at most 100:
        more than that many signed-in devices is not a list anyone reads)."""
        rows = await self._devices.live(user_id, MAX_DEVICES)
        return [SignedInDevice(r["id"], r["name"], r["platform"], int(r["created_at"]), int(r["last_seen_at"]),
                               r["ip"]) for r in rows]

    async def sign_out(self, user_id: int, device_id: str, *, actor_id: int | None) -> None:
        """End every session of one of `user_id`'s devices; 404 if it has none (another user's
        device looks exactly like an unknown one). Audited with who did it."""
        now = self._clock.now_ms()
        if len(device_id) > MAX_DEVICE_FIELD or has_control_chars(device_id):
            raise not_found("No such signed-in device.")  # no device can have that id (a NUL, say)

        async def write(tx: Tx) -> list[int]:
            families = await self._devices.revoke(tx, user_id, device_id, SIGNED_OUT, now)
            if families:
                await self._audit.record(tx, self._ids.next_id(), now, actor_id, "device.sign_out", str(user_id),
                                         {"device_id": device_id, "sessions": len(families)})
            return families

        families = await self._db.transaction("device_sign_out", write)
        if not families:
            raise not_found("No such signed-in device.")
        log.info("user %s: device %r signed out (%d sessions) by %s", user_id, device_id, len(families), actor_id)
        await self._auth.notify_revoked(user_id, families, SIGNED_OUT)

    async def seen(self, user_id: int, device_id: str, ip: str) -> None:
        """The device connected (a socket) from `ip`: one write per connect, none per frame."""
        now = self._clock.now_ms()
        await self._db.transaction("device_seen", lambda tx: self._devices.seen(tx, user_id, device_id, now, ip))
