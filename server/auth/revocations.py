"""Revocations made by other processes reach this one.

A `lucky user disable` run beside the server, or a logout on another node, ends sessions in
the database only; this server's open sockets of those sessions would stay open until they
reconnect. `RevocationFeed.poll` looks for families revoked since its last look (an indexed
range read) and hands the new ones to the same listeners as the server's own revocations,
which kick the sockets. Revocations this process announced itself are remembered and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from ..clock import Clock
from ..storage.stores.tokens import TokenStore

log = logging.getLogger(__name__)

# The kick reason a socket is told, by the reason stored with the revocation: the contract's
# four (PROTOCOL.md, `kick`): `disabled`, `signed_out` (a device or every session ended by its
# user or an admin), `token_expired` (not a revocation) and, for any other, `logout`.
KICK_REASONS = {"disabled": "disabled", "admin": "signed_out", "signed_out": "signed_out"}


def kick_reason(revoked_reason: str) -> str:
    """What a socket of a session revoked for `revoked_reason` is told in its `kick` frame."""
    return KICK_REASONS.get(revoked_reason, "logout")

# A revocation is stamped when its transaction runs and seen once it commits, possibly after a
# later one: each look starts this far back, and what was handled is remembered that long.
OVERLAP_MS = 10_000
PAGE = 500

Notify = Callable[[int, list[int], str], Awaitable[None]]


class RevocationFeed:
    def __init__(self, tokens: TokenStore, clock: Clock, notify: Notify) -> None:
        self._tokens = tokens
        self._clock = clock
        self._notify = notify
        self._since = clock.now_ms()  # revocations from before this process started are not news
        self._seen: dict[int, int] = {}  # family id -> revoked_at, for the overlap window

    def saw(self, family_ids: Iterable[int]) -> None:
        """Families this process revoked and announced itself."""
        now = self._clock.now_ms()
        for family_id in family_ids:
            self._seen[family_id] = now

    async def poll(self) -> int:
        """Announce the families revoked since the last look; how many were new."""
        at, after_id = self._since - OVERLAP_MS, 0
        fresh: dict[tuple[int, str], list[int]] = {}
        while True:
            rows = await self._tokens.revoked_after(at, after_id, PAGE)
            for row in rows:
                family_id, revoked_at = int(row["id"]), int(row["revoked_at"])
                at, after_id = revoked_at, family_id
                self._since = max(self._since, revoked_at)
                if family_id in self._seen:
                    continue
                self._seen[family_id] = revoked_at
                reason = kick_reason(str(row["revoked_reason"] or ""))
                fresh.setdefault((int(row["user_id"]), reason), []).append(family_id)
            if len(rows) < PAGE:
                break
        horizon = self._since - OVERLAP_MS
        self._seen = {f: seen_at for f, seen_at in self._seen.items() if seen_at >= horizon}
        for (user_id, reason), families in fresh.items():
            await self._notify(user_id, families, reason)
        return sum(len(families) for families in fresh.values())

    async def poll_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.poll()
            except Exception:  # the next look retries; a revocation is never lost from the table
                log.exception("looking for revoked sessions failed")
