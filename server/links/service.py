"""Short links: create, read, list, delete, stats, and the redirect's lookup (PROTOCOL.md,
"Short links"; docs/protocol.md for what the contract leaves open).

Who may do what: a signed-in user creates links (rate-limited per user) and reads, lists,
deletes and sees the stats of their own; an admin those of anyone. Methods that take
`actor_id` check it: `None` means an operator (the CLI), who may do anything. What operators
create or delete (`operator=True`: the console, the CLI) and every deletion by someone other
than the owner go to the audit log (`link.create`, `link.delete`, target the code).

For the console: `create`, `get`, `list_owned` / `list_all` (keyset-paged, newest first),
`delete`, `stats`, `short_url`; each raises `LuckyError` with the contract's status.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, timedelta

from ..clock import Clock
from ..config import LinksConfig
from ..cursors import encode_cursor, int_cursor
from ..errors import LuckyError, forbidden, not_found, rate_limited, unavailable, validation_failed
from ..ids import MAX_ID, Snowflake
from ..shared_ratelimit import Limits
from ..storage import Database
from ..storage.engine import Tx
from ..storage.stores.audit import AuditStore
from ..storage.stores.links import LinkRecord, LinkStore
from ..users.service import UserService
from .rules import (check_chosen_code, check_expiry, code_taken, could_be_code, normalize_url, random_code)
from .visits import DAY_MS, LinkCache, VisitCounter

log = logging.getLogger(__name__)

MAX_STATS_DAYS = 365
DEFAULT_STATS_DAYS = 30
_RANDOM_ATTEMPTS = 8  # a collision at 62^7 is rare; eight in a row means the space is nearly full
_CURSOR_TAG = "links"
_CLEANUP_BATCH = 5000


@dataclass(frozen=True)
class LinkStats:
    """A link's total visits and its visits on each of the last days, oldest first (zeros included)."""

    code: str
    visits: int
    days: list[tuple[str, int]]  # ("YYYY-MM-DD", visits)


@dataclass(frozen=True)
class VisitCleanup:
    """What `LinkService.cleanup_visits` removed."""

    rows: int
    before_day: str

    def summary(self) -> str:
        return f"removed {self.rows} per-day visit count(s) of days before {self.before_day}"


class LinkGone(LuckyError):
    """The redirect's answer for a link that cannot be followed (404 unknown or deleted, 410
    expired); the edge renders it as a small HTML page."""


def day_text(day: int) -> str:
    """A day number (days since 1970-01-01, UTC) as YYYY-MM-DD."""
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


class LinkService:
    def __init__(self, db: Database, config: LinksConfig, clock: Clock, ids: Snowflake, public_url: str, *,
                 users: UserService, visits: VisitCounter, limits: Limits) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._ids = ids
        self._public_url = public_url.rstrip("/")
        self._users = users
        self._store = LinkStore(db)
        self._audit = AuditStore(db)
        self._limiter = limits.limiter("link_create", config.create_per_min, 60.0)
        self._cache = LinkCache(clock, config.cache_size)
        self.visits = visits

    def short_url(self, code: str) -> str:
        return f"{self._public_url}/s/{code}"

    # --- creating -------------------------------------------------------------------------

    async def create(self, owner_id: int, url: str, *, code: str | None = None, expires_at: int | None = None,
                     actor_id: int | None = None, operator: bool = False) -> tuple[LinkRecord, bool]:
        """A link from `owner_id` to `url`; (the link, True) when created.

        `code` is chosen (3..32 of [A-Za-z0-9_-], not reserved; 409 when taken, by a deleted
        link too) or, left out, random (`links.code_length` base62 characters). The same URL
        by the same owner, live (not deleted, not expired), answers (that link, False) when no
        code was asked for and the expiry is the same, or when the code asked for is that link's.
        A bad URL or expiry is 422. Calls from users are limited to `links.create_per_min` a
        minute (429); `operator` calls (console, CLI) are not, and are written to the audit
        log as done by `actor_id` (None: the CLI).
        """
        if not operator:
            wait = await self._limiter.hit(str(owner_id))
            if wait:
                raise rate_limited(wait, "Too many links created; try again later.")
        target = normalize_url(url)
        chosen = check_chosen_code(code) if code is not None else None
        now = self._clock.now_ms()
        check_expiry(expires_at, now)
        url_hash = hashlib.sha256(target.encode()).hexdigest()

        async def write(tx: Tx) -> tuple[LinkRecord, bool]:
            for link in await self._store.live_by_url(tx, owner_id, url_hash, target, now):
                if link.code == chosen or (chosen is None and link.expires_at == expires_at):
                    return link, False
            candidates = [chosen] if chosen is not None else [
                random_code(self._config.code_length) for _ in range(_RANDOM_ATTEMPTS)]
            for candidate in candidates:
                link = LinkRecord(self._ids.next_id(), candidate, target, owner_id, expires_at, 0, now, None)
                if await self._store.insert(tx, link, url_hash):
                    if operator:
                        await self._audit.record(tx, self._ids.next_id(), now, actor_id, "link.create", candidate,
                                                 {"url": target, "owner_id": str(owner_id)})
                    return link, True
            if chosen is not None:
                raise code_taken(chosen)
            raise unavailable("No free random code was found; raise links.code_length.")

        link, created = await self._db.transaction("link_create", write)
        if created:
            log.info("link %s created by user %d", link.code, owner_id)
        return link, created

    # --- reading --------------------------------------------------------------------------

    async def get(self, code: str, actor_id: int | None) -> LinkRecord:
        """The link, for its owner, an admin or an operator (`None`); 404 unknown or deleted, 403 others."""
        link = await self._live(code)
        await self._check_may_manage(link, actor_id)
        return link

    async def list_owned(self, owner_id: int, cursor: str | None, limit: int) -> tuple[list[LinkRecord], str | None]:
        """The owner's links (not deleted, expired ones included), newest first; a page and the next cursor."""
        return await self._page(owner_id, cursor, limit)

    async def list_all(self, cursor: str | None, limit: int) -> tuple[list[LinkRecord], str | None]:
        """Everyone's links (not deleted), newest first, for admins and operators; keyset-paged by id."""
        return await self._page(None, cursor, limit)

    async def _page(self, owner_id: int | None, cursor: str | None, limit: int) -> tuple[list[LinkRecord], str | None]:
        before = int_cursor(cursor, _CURSOR_TAG, MAX_ID)
        rows = await self._store.page(owner_id, before, limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return page, encode_cursor(_CURSOR_TAG, page[-1].id) if more and page else None

    async def stats(self, code: str, actor_id: int | None, days: int = DEFAULT_STATS_DAYS) -> LinkStats:
        """Total visits and visits per UTC day for the last `days` (1..365) days, today included.
        Visits reach the database every `links.flush_s` seconds, so the latest are not yet here."""
        if not 1 <= days <= MAX_STATS_DAYS:
            raise validation_failed("days", f"a whole number from 1 to {MAX_STATS_DAYS}")
        link = await self.get(code, actor_id)
        today = self._clock.now_ms() // DAY_MS
        first = today - days + 1
        counts = await self._store.visits_by_day(link.id, first, today)
        return LinkStats(link.code, link.visits, [(day_text(d), counts.get(d, 0)) for d in range(first, today + 1)])

    # --- deleting -------------------------------------------------------------------------

    async def delete(self, code: str, actor_id: int | None, *, operator: bool = False) -> LinkRecord:
        """Delete a link (owner, admin or operator): `/s/{code}` answers 404 from then on and the
        code is never given again; its visits per day go. 404 unknown or already deleted.
        Written to the audit log when `operator` (console, CLI) or done by someone not the owner."""
        link = await self._live(code)
        await self._check_may_manage(link, actor_id)
        now = self._clock.now_ms()

        async def write(tx: Tx) -> bool:
            if not await self._store.mark_deleted(tx, link.id, now):
                return False
            if operator or actor_id != link.owner_id:
                await self._audit.record(tx, self._ids.next_id(), now, actor_id, "link.delete", link.code,
                                         {"url": link.url, "owner_id": str(link.owner_id)})
            return True

        deleted = await self._db.transaction("link_delete", write)
        self._cache.forget(code)
        if not deleted:
            raise not_found("No link has that code.")
        log.info("link %s deleted by %s", code, "an operator" if actor_id is None else f"user {actor_id}")
        return link

    # --- the redirect ---------------------------------------------------------------------

    async def follow(self, code: str) -> str:
        """Where `/s/{code}` goes, counting the visit; `LinkGone` (404 unknown or deleted, 410
        expired) otherwise. Served from memory after the first lookup (`links.cache_size`)."""
        if not could_be_code(code):
            raise LinkGone(404, "not_found", "No link has that code.")
        link = self._cache.get(code)
        if link is None:
            link = await self._store.by_code(code)
            if link is None:
                raise LinkGone(404, "not_found", "No link has that code.")
            self._cache.put(link)
        if link.deleted_at is not None:
            raise LinkGone(404, "not_found", "This link was deleted.")
        if link.expires_at is not None and link.expires_at <= self._clock.now_ms():
            raise LinkGone(410, "gone", "This link has expired.")
        self.visits.count(link.id)
        return link.url

    # --- clean-up (the cleanup.link_visits job) -------------------------------------------

    async def cleanup_visits(self) -> VisitCleanup:
        """Remove per-day visit counts older than `links.visits_keep_days` days (the totals stay),
        in batches, each its own transaction."""
        before = self._clock.now_ms() // DAY_MS - self._config.visits_keep_days
        removed = 0
        while True:
            batch = await self._store.forget_visits_before(before, _CLEANUP_BATCH)
            removed += batch
            if batch < _CLEANUP_BATCH:
                return VisitCleanup(removed, day_text(before))

    async def default_owner(self) -> int:
        """The first admin account: the owner of links an operator creates without naming one."""
        owner = await self._store.first_admin_id()
        if owner is None:
            raise not_found("There is no admin account to own the link; name an owner.")
        return owner

    # --- rules ----------------------------------------------------------------------------

    async def _live(self, code: str) -> LinkRecord:
        link = await self._store.by_code(code) if could_be_code(code) else None
        if link is None or link.deleted_at is not None:
            raise not_found("No link has that code.")
        return link

    async def _check_may_manage(self, link: LinkRecord, actor_id: int | None) -> None:
        if actor_id is None or actor_id == link.owner_id:
            return
        try:
            actor = await self._users.get(actor_id)
        except LuckyError:
            actor = None
        if actor is None or not actor.is_admin:
            raise forbidden("Only the link's owner or an admin may do that.")
