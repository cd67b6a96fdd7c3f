"""QR sign-in: a browser signs in by showing a QR code that a signed-in phone scans and confirms.

The browser creates a session and gets a `qr_id` (in the QR code, not secret once shown) and a
`poll_token` (only the creator has it). It polls the session's state; the phone scans
(`scanned`, the browser learns who), then confirms or cancels. The first poll after `confirmed`
takes a token set for a NEW device of the scanning user (its own token family, named after the
browser), exactly once: a conditional UPDATE in the database claims it, in the same
transaction that writes the session, so two concurrent polls cannot both get it, on one node or
on several.

State lives in the database (any node can answer). A change is broadcast on the bus (topic
`qr`), so the long-polling browser wakes at once on whichever node it waits; the long-poll's
re-read every `auth.qr_reread_s` seconds is only the safety net should a broadcast be lost
(pub/sub may drop), and notices the expiry. Knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import segno

from ..bus import Bus
from ..clock import Clock
from ..config import AuthConfig
from ..errors import LuckyError, conflict, forbidden, not_found, unauthorized
from ..storage import Database, Tx
from ..storage.stores.qr import QrRow, QrStore
from ..storage.stores.users import UserRecord, UserStore
from .service import AuthService, Device, TokenSet

log = logging.getLogger(__name__)

PENDING, SCANNED, CONFIRMED, EXPIRED, CANCELLED = "pending", "scanned", "confirmed", "expired", "cancelled"
WAITING = (PENDING, SCANNED)  # states a long-poll waits in; the others are final
MAX_WAIT_S = 30
TOPIC = "qr"  # the bus topic of state changes: {"qr_id": ...}
KEEP_EXPIRED_MS = 3_600_000  # an expired session still answers `expired` this long, then 404
CLEANUP_BATCH = 500
# What `create` makes (token_urlsafe); anything else names no session and is not looked up
# (a NUL, which PostgreSQL cannot compare, included).
QR_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class QrCreated:
    qr_id: str
    poll_token: str
    payload: str
    expires_in: int


@dataclass(frozen=True)
class QrPoll:
    state: str
    scanned_by: UserRecord | None
    tokens: TokenSet | None  # only on the one poll that claimed them


def qr_payload(qr_id: str, public_url: str) -> str:
    """What the QR code encodes: `lucky://qr/<qr_id>?s=<server public URL, percent-encoded>`.
    The scanning app opens the session on that server; the poll token is never in it."""
    return f"lucky://qr/{qr_id}?s={quote(public_url, safe='')}"


def hash_poll_token(poll_token: str) -> str:
    return hashlib.sha256(poll_token.encode("utf-8", "surrogatepass")).hexdigest()


def gone(message: str) -> LuckyError:
    return LuckyError(410, "gone", message)


class _Watchers:
    """The long-polls waiting on this node, by qr_id; `notify` wakes them."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}
        self.stopping = False

    @contextlib.contextmanager
    def watch(self, qr_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events.setdefault(qr_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._events.get(qr_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[qr_id]

    def notify(self, qr_id: str) -> None:
        for event in self._events.get(qr_id, ()):
            event.set()

    def count(self) -> int:
        return sum(len(events) for events in self._events.values())

    def stop(self) -> None:
        """The server is shutting down: every long-poll answers with what it has, now."""
        self.stopping = True
        for events in self._events.values():
            for event in events:
                event.set()


class QrLogin:
    def __init__(self, db: Database, config: AuthConfig, clock: Clock, auth: AuthService, public_url: str,
                 bus: Bus) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._auth = auth
        self._public_url = public_url
        self._store = QrStore(db)
        self._users = UserStore(db)
        self._watchers = _Watchers()
        self._bus = bus
        bus.on(TOPIC, self._changed)

    async def _changed(self, payload: dict[str, object]) -> None:
        self._watchers.notify(str(payload["qr_id"]))

    # --- the browser ----------------------------------------------------------------------

    async def create(self, device: Device, ip: str) -> QrCreated:
        """A new pending session; `device` names the browser's device-to-be (its id is ignored:
        the session always signs in a new device)."""
        await self._auth.check_ip(ip)
        now = self._clock.now_ms()
        qr_id = secrets.token_urlsafe(16)  # 128 random bits: a session cannot be guessed
        poll_token = secrets.token_urlsafe(32)
        ttl_s = self._config.qr_ttl_s
        row = QrRow(qr_id, hash_poll_token(poll_token), PENDING, device.name, device.platform or "web",
                    now, now + ttl_s * 1000, None, None)

        async def write(tx: Tx) -> None:
            await self._store.create(tx, row)

        await self._db.transaction("qr_create", write)
        return QrCreated(qr_id, poll_token, qr_payload(qr_id, self._public_url), ttl_s)

    def payload(self, qr_id: str) -> str:
        return qr_payload(qr_id, self._public_url)

    async def png(self, qr_id: str) -> bytes:
        """The session's QR code as a PNG: 404 unknown, 410 once it has ended (expired,
        cancelled or confirmed). No poll token: the image shows only the payload, which
        is on the browser's screen anyway."""
        row = await self._find(qr_id)
        if self._state(row) not in WAITING:
            raise gone("This QR sign-in session has ended; start a new one.")
        out = io.BytesIO()
        segno.make(self.payload(qr_id), error="m").save(out, kind="png", scale=8, border=4)
        return out.getvalue()

    async def poll(self, qr_id: str, poll_token: str | None, wait_s: int, ip: str) -> QrPoll:
        """The session's state, after waiting up to `wait_s` seconds for it to change from what
        it is now (a final state answers at once). The first poll that sees `confirmed`
        gets the token set; no poll after it does."""
        await self._auth.check_ip(ip)
        row = await self._find(qr_id)
        if not poll_token or not hmac.compare_digest(row.poll_hash, hash_poll_token(poll_token)):
            raise unauthorized("Only the browser that created this QR session may poll it (send its poll_token).")
        first = self._state(row)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(wait_s, 0), MAX_WAIT_S)
        with self._watchers.watch(qr_id) as changed:
            while self._state(row) == first and first in WAITING and not self._watchers.stopping:
                left = deadline - loop.time()
                if left <= 0:
                    break
                # Woken at once by a change on any node (the bus); the re-read is the safety
                # net for a lost broadcast, and sees the expiry.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left, self._config.qr_reread_s))
                changed.clear()  # before the read: a change after it sets the event again
                fresh = await self._store.get(qr_id)
                if fresh is None:  # removed by the clean-up meanwhile
                    return QrPoll(EXPIRED, None, None)
                row = fresh
        state = self._state(row)
        scanner = await self._users.by_id(row.scanned_by) if row.scanned_by is not None else None
        if state == CONFIRMED and row.claimed_at is None:
            return await self._claim(row, scanner, ip)
        return QrPoll(state, scanner, None)

    async def _claim(self, row: QrRow, scanner: UserRecord | None, ip: str) -> QrPoll:
        if scanner is None or scanner.disabled:
            # The account that confirmed was disabled since: nobody is signed in.
            await self._db.transaction("qr_cancel", lambda tx: self._store.move(
                tx, row.id, CONFIRMED, CANCELLED, self._clock.now_ms()))
            return QrPoll(CANCELLED, scanner, None)
        device = Device("", row.device_name, row.device_platform)

        async def claim(tx: Tx) -> TokenSet | None:
            if not await self._store.claim(tx, row.id, self._clock.now_ms()):
                return None  # another poll took it (or it expired this instant)
            return await self._auth.start_session_in(tx, scanner, device, ip)

        tokens = await self._db.transaction("qr_claim", claim)
        if tokens is None:
            fresh = await self._store.get(row.id)
            return QrPoll(self._state(fresh) if fresh is not None else EXPIRED, scanner, None)
        log.info("QR sign-in %s: user %s signed in a new device", row.id, scanner.id)
        return QrPoll(CONFIRMED, scanner, tokens)

    # --- the phone ------------------------------------------------------------------------

    async def scan(self, qr_id: str, user_id: int) -> None:
        """The signed-in `user_id` scanned the code: the browser sees who."""
        await self._move(qr_id, user_id, PENDING, SCANNED)

    async def confirm(self, qr_id: str, user_id: int) -> None:
        """The user who scanned agrees: the browser's next poll signs it in as them."""
        await self._move(qr_id, user_id, SCANNED, CONFIRMED)

    async def cancel(self, qr_id: str, user_id: int) -> None:
        """The user who scanned refuses: the browser sees `cancelled`."""
        await self._move(qr_id, user_id, SCANNED, CANCELLED)

    async def _move(self, qr_id: str, user_id: int, source: str, target: str) -> None:
        """`source` -> `target` for `user_id`; repeating a move already made by the same user
        is a success (a phone's retry). See docs/protocol.md, "QR sign-in", for the answers."""
        now = self._clock.now_ms()
        await self._find(qr_id)  # 404 before a write transaction starts

        async def write(tx: Tx) -> None:
            row = await self._store.get_in(tx, qr_id)
            if row is None:
                raise not_found("No such QR sign-in session.")
            state = self._state(row, now)
            if state == target and row.scanned_by == user_id:
                return  # done already, by this user
            if state == EXPIRED:
                raise gone("This QR sign-in session has expired; the browser must show a new code.")
            if target == SCANNED and row.scanned_by is not None and row.scanned_by != user_id:
                raise conflict("Another account scanned this QR code already.")
            if row.scanned_by is not None and row.scanned_by != user_id:
                raise forbidden("Another account scanned this QR code; only it may confirm or cancel.")
            if state != source:
                raise conflict(_conflict_message(state, target))
            if not await self._store.move(tx, qr_id, source, target, now, scanned_by=user_id):
                raise conflict("This QR sign-in session changed meanwhile; look at it again.")

        await self._db.transaction(f"qr_{target}", write)
        await self._bus.broadcast(TOPIC, {"qr_id": qr_id})  # wakes the browser's long-poll, on any node

    # --- state, clean-up ------------------------------------------------------------------

    async def _find(self, qr_id: str) -> QrRow:
        row = await self._store.get(qr_id) if QR_ID_RE.fullmatch(qr_id) else None
        if row is None:
            raise not_found("No such QR sign-in session.")
        return row

    def _state(self, row: QrRow, now_ms: int | None = None) -> str:
        """The state a client sees: a session past its expiry that did not finish is expired."""
        now = self._clock.now_ms() if now_ms is None else now_ms
        if now >= row.expires_at and (row.state in WAITING or (row.state == CONFIRMED and row.claimed_at is None)):
            return EXPIRED
        return row.state

    async def cleanup(self) -> int:
        """Remove sessions that expired over `KEEP_EXPIRED_MS` ago (the cleanup.qr job)."""
        before = self._clock.now_ms() - KEEP_EXPIRED_MS
        removed = 0
        while count := await self._store.delete_expired(before, CLEANUP_BATCH):
            removed += count
        return removed

    def stop_waiting(self) -> None:
        """At shutdown: long-polls answer the state they have instead of holding the drain."""
        self._watchers.stop()

    def waiting(self) -> int:
        """Long-polls waiting on this node (for tests and gauges)."""
        return self._watchers.count()


def _conflict_message(state: str, target: str) -> str:
    if state == PENDING:
        return f"Scan this QR code before you {'confirm' if target == CONFIRMED else 'cancel'} it."
    if state == SCANNED:
        return "Another scan of this QR code is waiting for its confirmation."
    return f"This QR sign-in session is {state} already."
