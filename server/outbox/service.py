"""The outbox job and the outbox's state, for the scheduler, `lucky outbox` and the console.

A stored message's outbox row is deleted once the message was dispatched; a row still there
`outbox.grace_s` after its commit (a node died between commit and dispatch) is claimed by the
`outbox.retry` job and dispatched again, with exponential backoff and jitter between failed
attempts, and marked failed after `outbox.max_attempts`. The same job sends the deliveries
(offline push) that are due: rows a dead node left, and retries.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..clock import Clock
from ..config import OutboxConfig
from ..storage import Database
from ..cursors import decode_cursor, encode_cursor
from ..errors import validation_failed
from ..storage.stores.outbox import FailedRow, OutboxStore, QueueCounts, RetryQueue
from .backoff import attempt_outcome
from .deliveries import DeliveryService, SendReport

log = logging.getLogger(__name__)

CLAIM_BATCH = 500
# A claimed message is dispatched within moments; a claimer that dies leaves it for this long.
DISPATCH_LEASE_MS = 60_000
KINDS = ("message", "push")  # `message`: table outbox; `push`: the deliveries of offline push

# Dispatch a stored message again (by id) to the devices of its members; a message no
# longer stored is no error.
Redispatch = Callable[[int], Awaitable[None]]
# Delete the outbox rows of what this process has dispatched but not yet marked (the send
# writer marks them with its next batch): they are not due, whatever their age.
FlushDispatched = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class KindStatus:
    """One kind of row: pending, failed, and the age of the oldest pending one (ms, or None)."""

    kind: str
    pending: int
    failed: int
    oldest_pending_ms: int | None


@dataclass(frozen=True)
class FailedPage:
    """One page of the failed rows of a kind, and the cursor of the next page (None: the last)."""

    kind: str
    rows: list[FailedRow]
    next_cursor: str | None


@dataclass(frozen=True)
class RetryReport:
    dispatched: int
    retried: int
    failed: int
    push: SendReport

    def summary(self) -> str:
        line = f"dispatched {self.dispatched} message(s)"
        if self.retried or self.failed:
            line += f" ({self.retried} to retry, {self.failed} failed)"
        push = self.push
        line += f"; sent {push.sent} notification(s)"
        if push.retried or push.failed:
            line += f" ({push.retried} to retry, {push.failed} failed)"
        return line


class OutboxService:
    def __init__(self, db: Database, config: OutboxConfig, clock: Clock, rng: random.Random,
                 redispatch: Redispatch, flush_dispatched: FlushDispatched, deliveries: DeliveryService) -> None:
        self._outbox = OutboxStore(db)
        self._flush_dispatched = flush_dispatched
        self._config = config
        self._clock = clock
        self._rng = rng
        self._redispatch = redispatch
        self.deliveries = deliveries

    async def start(self) -> None:
        """Start what a server runs: the push sender (when push is configured)."""
        await self.deliveries.start()

    async def stop(self) -> None:
        await self.deliveries.stop()

    async def run_job(self) -> str:
        """The `outbox.retry` job: dispatch due outbox rows, send due deliveries; one line."""
        report = await self.retry_due()
        if report.dispatched or report.failed or report.push.sent or report.push.failed:
            log.info("outbox: %s", report.summary())
        return report.summary()

    async def retry_due(self) -> RetryReport:
        """Dispatch every outbox row due now (claimed, so no other process takes it meanwhile),
        then send the deliveries due now."""
        dispatched = retried = failed = 0
        await self._flush_dispatched()
        while True:
            rows = await self._outbox.claim(self._clock.now_ms(), DISPATCH_LEASE_MS, CLAIM_BATCH)
            outcomes = []
            for row in rows:
                error: str | None = None
                try:
                    await self._redispatch(row.key)
                except Exception as exc:  # noqa: BLE001 - retried with backoff
                    error = f"{type(exc).__name__}: {exc}"[:300]
                    log.warning("outbox: dispatching message %s (attempt %d) failed: %s", row.key, row.attempts, error)
                outcomes.append(attempt_outcome(row, error, self._clock.now_ms(), self._config.max_attempts,
                                                self._rng))
            await self._outbox.record(outcomes)
            dispatched += sum(o.done for o in outcomes)
            failed += sum(o.failed for o in outcomes)
            retried += sum(not o.done and not o.failed for o in outcomes)
            if len(rows) < CLAIM_BATCH:
                break
        return RetryReport(dispatched, retried, failed, await self.deliveries.send_due())

    async def status(self) -> list[KindStatus]:
        """Per kind (`message`, `push`): pending and failed rows, and the oldest pending age."""
        await self._flush_dispatched()
        now = self._clock.now_ms()
        counts: dict[str, QueueCounts] = {c.kind: c for c in await self._outbox.counts()}
        counts.update({c.kind: c for c in await self.deliveries.store.counts()})
        found = []
        for kind in sorted(set(KINDS) | set(counts)):
            c = counts.get(kind)
            if c is None:
                found.append(KindStatus(kind, 0, 0, None))
            else:
                oldest = None if c.oldest_pending_at is None else max(0, now - c.oldest_pending_at)
                found.append(KindStatus(kind, c.pending, c.failed, oldest))
        return found

    async def failed(self, kind: str, cursor: str | None = None, limit: int = 50) -> FailedPage:
        """The failed rows of one kind (`message` or `push`), a page at a time, in the order of
        their last attempt; `cursor` is a page's `next_cursor` (a bad one is 400)."""
        queues: dict[str, RetryQueue] = {"message": self._outbox, "push": self.deliveries.store}
        queue = queues.get(kind)
        if queue is None:
            raise validation_failed("kind", f"one of {', '.join(KINDS)}")
        tag = f"outbox-failed-{kind}"
        after = None
        if cursor:
            at, key = decode_cursor(cursor, tag, int, int)
            after = (int(at), int(key))
        rows = await queue.failed_page(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        return FailedPage(kind, rows, encode_cursor(tag, last.next_attempt_at, last.key) if last else None)

    async def retry(self, failed: bool = False) -> dict[str, int]:
        """Make pending rows due now (the next job run takes them); with `failed`, failed rows
        become pending and due now with their attempts reset instead. How many, per kind."""
        now = self._clock.now_ms()
        if failed:
            message, push = await self._outbox.revive_failed(now), await self.deliveries.store.revive_failed(now)
        else:
            message, push = await self._outbox.due_now(now), await self.deliveries.store.due_now(now)
        if message or push:
            self.deliveries.wake()
        return {"message": message, "push": push}
