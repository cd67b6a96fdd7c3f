"""The failed rows of each kind, a page at a time (the console's outbox page lists them), on
both databases: every failed row exactly once across the pages, in the order of their last
attempt, pending and in-flight rows never; a bad kind or cursor is a 4xx LuckyError."""

from __future__ import annotations

import pytest

from lucky_server.clock import FakeClock
from lucky_server.core import open_core
from lucky_server.errors import LuckyError
from lucky_server.storage import Tx
from lucky_server.storage.stores.outbox import DeliveryStore, Outcome, OutboxStore

from ..conftest import MakeConfig

ROWS = 23


async def test_failed_rows_page_by_page_once_each_in_order(make_config: MakeConfig, clock: FakeClock) -> None:
    async with open_core(make_config(), clock=clock, apply_migrations=True) as core:
        now = clock.now_ms()

        async def fill(tx: Tx) -> None:
            await OutboxStore(core.db).add(tx, [(n, "p:1:2") for n in range(1, ROWS + 1)], now, now)
            await DeliveryStore(core.db).add(tx, [(n, "push", "{}") for n in range(1, ROWS + 1)], now)

        await core.db.transaction("fill", fill)
        for store in (OutboxStore(core.db), DeliveryStore(core.db)):
            claimed = await store.claim(now, 60_000, 100)
            # Rows 1..20 fail (their last attempts at falling times, two at one time), 21 is
            # retried later (pending), 22..23 stay in flight.
            await store.record([Outcome(c.key, done=False, next_at=now + 1000 - (c.key // 2), failed=True,
                                        error=f"HTTP 500 <{c.key}>") for c in claimed if c.key <= 20]
                               + [Outcome(21, done=False, next_at=now + 5000)])

        for kind in ("message", "push"):
            seen = []
            cursor = None
            pages = 0
            while True:
                page = await core.outbox.failed(kind, cursor, limit=6)
                pages += 1
                assert page.kind == kind and len(page.rows) <= 6
                seen.extend(page.rows)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert pages == 4
            assert sorted(r.key for r in seen) == list(range(1, 21))
            assert [(r.next_attempt_at, r.key) for r in seen] == sorted((r.next_attempt_at, r.key) for r in seen)
            assert {r.last_error for r in seen if r.key == 7} == {"HTTP 500 <7>"}
            assert all(r.attempts == 1 and r.created_at == now for r in seen)

        # A failed row revived leaves the listing.
        await core.outbox.retry(failed=True)
        assert (await core.outbox.failed("push")).rows == []


async def test_a_bad_kind_or_cursor_is_refused(make_config: MakeConfig, clock: FakeClock) -> None:
    async with open_core(make_config(), clock=clock, apply_migrations=True) as core:
        with pytest.raises(LuckyError) as bad_kind:
            await core.outbox.failed("mail")
        assert bad_kind.value.status == 422
        for cursor in ("nonsense", "WyJ4Il0"):
            with pytest.raises(LuckyError) as bad_cursor:
                await core.outbox.failed("push", cursor)
            assert bad_cursor.value.status == 400
        message_page = await core.outbox.failed("message")
        assert message_page.rows == [] and message_page.next_cursor is None
        # One kind's cursor is not the other's.
        other = "WyJvdXRib3gtZmFpbGVkLW1lc3NhZ2UiLDEsMV0"  # ["outbox-failed-message",1,1]
        with pytest.raises(LuckyError):
            await core.outbox.failed("push", other)
        assert (await core.outbox.failed("message", other)).rows == []
