"""Counting visits without a database write per visit, and the links the redirect keeps in memory.

`VisitCounter` adds each visit to a count in memory, per link and UTC day, and writes what
accumulated every `links.flush_s` seconds (and when the server stops) as increments, so a
redirect costs a dict update and nodes sharing PostgreSQL add up their counts. It is the one
seam the scale-out issue replaces (with Redis counters): the service only calls `count`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from ..clock import Clock
from ..storage.stores.links import LinkRecord, LinkStore
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class VisitCounter:
    def __init__(self, store: LinkStore, clock: Clock, flush_s: float) -> None:
        self._store = store
        self._clock = clock
        self._flush_s = flush_s
        self._pending: dict[tuple[int, int], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    def count(self, link_id: int) -> None:
        """One visit of the link, today (UTC); written by the next flush."""
        key = (link_id, self._clock.now_ms() // DAY_MS)
        self._pending[key] = self._pending.get(key, 0) + 1

    @property
    def pending(self) -> int:
        """Visits counted on this node and not yet written."""
        return sum(self._pending.values())

    async def flush(self) -> int:
        """Write the counted visits as increments, in one transaction; how many were written.

        If the write fails the counts are kept for the next flush (and the error raised), so a
        database that is briefly away costs no visit.
        """
        async with self._flushing:
            taken, self._pending = self._pending, {}
            if not taken:
                return 0
            try:
                await self._store.add_visits([(link, day, n) for (link, day), n in taken.items()])
            except BaseException:
                for key, n in taken.items():
                    self._pending[key] = self._pending.get(key, 0) + n
                raise
            return sum(taken.values())

    async def start(self) -> None:
        """Flush every `flush_s` seconds until `stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="link-visits-flush")

    async def stop(self) -> None:
        """Stop flushing on a timer and write what is left (the server is stopping)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - shutting down: say what is lost, do not stop the rest
            log.exception("link visits: %d visit(s) not written at shutdown", self.pending)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - kept for the next round
                log.warning("link visits: flush failed, %d visit(s) kept for the next one", self.pending,
                            exc_info=True)


class LinkCache:
    """The links `GET /s/{code}` looked up lately, at most `size`, least recently used out first.

    A link deleted on this node is dropped at once (`forget`); one deleted on another node
    is seen when its entry is `max_age_s` old. An entry's expiry is checked by the caller at
    each read, so a link that expires while cached answers 410 at once.
    """

    def __init__(self, clock: Clock, size: int, max_age_s: float = 30.0) -> None:
        self._clock = clock
        self._size = size
        self._max_age_s = max_age_s
        self._entries: OrderedDict[str, tuple[LinkRecord, float]] = OrderedDict()

    def get(self, code: str) -> LinkRecord | None:
        entry = self._entries.get(code)
        if entry is None:
            return None
        link, loaded = entry
        if self._clock.monotonic() - loaded > self._max_age_s:
            del self._entries[code]
            return None
        self._entries.move_to_end(code)
        return link

    def put(self, link: LinkRecord) -> None:
        if self._size <= 0:
            return
        self._entries[link.code] = (link, self._clock.monotonic())
        self._entries.move_to_end(link.code)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, code: str) -> None:
        self._entries.pop(code, None)

    def __len__(self) -> int:
        return len(self._entries)
