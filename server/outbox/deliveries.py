"""Sending the stored deliveries to their webhooks: offline push notifications (kind `push`)
to `push.webhook_url`, and SMS codes (kind `sms`, issue 12) to `auth.sms_webhook_url`.

Each row holds its JSON body as it was first written; every attempt posts those bytes,
signed (`X-Lucky-Signature: sha256=<hex HMAC-SHA256 of the body with push.webhook_secret>`),
so a retry carries the same `delivery_id` and the gateway can drop repeats. Each kind has its
`WebhookTarget`: its URL and secret, how a stored payload becomes the bytes posted (an SMS row
holds its body encrypted, opened only to post it), and how long a row may wait (an SMS row is
dropped, sent or not, once its code has expired). A 2xx deletes the
row; anything else, or no answer within `push.timeout_s`, re-arms it with exponential backoff
and jitter, until `push.max_attempts`, when it is marked failed.

Rows are claimed before they are posted (server/storage/stores/outbox.py), for a lease longer
than any attempt can take, so two senders (the one woken after a commit, the outbox job, or
another node) never post one row at the same time; a sender that dies leaves its claimed rows
to be claimed again once the lease runs out. One round claims at most `push.max_in_flight`
rows and posts them together; rounds run one at a time in a process, which bounds the POSTs
in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..clock import Clock
from ..config import PushConfig
from ..storage import Database
from ..storage.stores.outbox import Claimed, DeliveryStore, Outcome
from .backoff import attempt_outcome
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Lucky-Signature"
PUSH_KIND = "push"


@dataclass(frozen=True)
class WebhookTarget:
    """Where the deliveries of one kind go."""

    url: str  # empty: this kind is not sent
    secret: str
    ttl_ms: int = 0  # rows older than this are deleted unsent; 0: kept until sent or failed
    unseal: Callable[[str], bytes] | None = None  # the stored payload to the bytes posted; None: as UTF-8


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        """POST `body`; None when the receiver answered 2xx in time, else the reason."""

    async def close(self) -> None:
        """Release connections."""


def signature(secret: str, body: bytes) -> str:
    """The X-Lucky-Signature value of a body: `sha256=<hex HMAC-SHA256 with the secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed


class DeliveryService:
    def __init__(self, db: Database, config: PushConfig, clock: Clock, rng: random.Random, poster: Poster,
                 extra_targets: Mapping[str, WebhookTarget] | None = None) -> None:
        """Push goes to `push.webhook_url`; `extra_targets` name the other kinds' webhooks
        (attempts, timeout and concurrency are `push.*` for every kind)."""
        self.store = DeliveryStore(db)
        self._targets = {PUSH_KIND: WebhookTarget(config.webhook_url, config.webhook_secret), **(extra_targets or {})}
        self._config = config
        self._clock = clock
        self._rng = rng
        self._poster = poster
        # Longer than any attempt can take, so a row is never posted twice at once.
        self._lease_ms = int(config.timeout_s * 2000) + 5_000
        self._round = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.totals = SendReport()

    @property
    def enabled(self) -> bool:
        return any(target.url for target in self._targets.values())

    def wake(self) -> None:
        """Deliveries were just committed: send them now rather than at the next job tick."""
        self._wake.set()

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._wake.set()  # a first round at once: what is due already (left by a stopped node)
            self._task = asyncio.create_task(self._send_forever(), name="push-sender")

    async def stop(self) -> None:
        """Stop sending; a POST in flight is abandoned (its row is claimed again after the lease)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self._poster.close()

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:  # the job sends what this missed
                log.exception("sending push notifications failed")

    async def send_due(self) -> SendReport:
        """Post every delivery due now, a round of at most `push.max_in_flight` at a time."""
        report = SendReport()
        if not self.enabled:
            return report
        now = self._clock.now_ms()
        for kind, target in self._targets.items():
            if target.ttl_ms:
                await self.store.expire(kind, now - target.ttl_ms)
        while True:
            claimed, done = await self._send_round()
            report.add(done)
            if claimed < self._config.max_in_flight:
                return report

    async def _send_round(self) -> tuple[int, SendReport]:
        async with self._round:
            rows = await self.store.claim(self._clock.now_ms(), self._lease_ms, self._config.max_in_flight)
            if not rows:
                return 0, SendReport()
            errors = await asyncio.gather(*(self._post(row) for row in rows))
            now = self._clock.now_ms()
            outcomes = [self._outcome(row, error, now) for row, error in zip(rows, errors, strict=True)]
            await self.store.record(outcomes)
        report = SendReport(sent=sum(o.done for o in outcomes), failed=sum(o.failed for o in outcomes))
        report.retried = len(outcomes) - report.sent - report.failed
        self.totals.add(report)
        return len(rows), report

    async def _post(self, row: Claimed) -> str | None:
        target = self._targets.get(row.kind)
        if target is None or not target.url:
            return f"no webhook is configured for {row.kind!r} deliveries"
        try:
            body = target.unseal(row.payload) if target.unseal else row.payload.encode()
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(target.secret, body)}
            return await self._poster.post(target.url, body, headers)
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, retried
            return f"{type(exc).__name__}: {exc}"[:300]

    def _outcome(self, row: Claimed, error: str | None, now_ms: int) -> Outcome:
        outcome = attempt_outcome(row, error, now_ms, self._config.max_attempts, self._rng)
        if error is not None:
            log.warning("%s delivery %s attempt %d failed (%s)%s", row.kind, row.key, row.attempts, error,
                        ": marked failed" if outcome.failed else "")
        return outcome
