"""Short links: the links, their visit counts (added in batches), and visits per day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class LinkRecord:
    id: int
    code: str
    url: str
    owner_id: int
    expires_at: int | None
    visits: int
    created_at: int
    deleted_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> LinkRecord:
        return cls(int(row["id"]), row["code"], row["url"], int(row["owner_id"]),
                   None if row["expires_at"] is None else int(row["expires_at"]), int(row["visits"]),
                   int(row["created_at"]), None if row["deleted_at"] is None else int(row["deleted_at"]))


_COLUMNS = "id, code, url, owner_id, expires_at, visits, created_at, deleted_at"


class LinkStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, tx: Tx, link: LinkRecord, url_hash: str) -> bool:
        """Insert `link`; False (nothing written) when its code is taken, deleted links' included."""
        changed = await tx.execute(
            "INSERT INTO links (id, code, url, url_hash, owner_id, expires_at, visits, created_at, deleted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?, NULL) ON CONFLICT (code) DO NOTHING",
            (link.id, link.code, link.url, url_hash, link.owner_id, link.expires_at, link.created_at))
        return changed == 1

    async def by_code(self, code: str) -> LinkRecord | None:
        """The link with this code, deleted or not."""
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM links WHERE code = ?", (code,))
        return LinkRecord.from_row(row) if row else None

    async def live_by_url(self, tx: Tx, owner_id: int, url_hash: str, url: str, now_ms: int) -> list[LinkRecord]:
        """The owner's links to `url` that are neither deleted nor expired, oldest first."""
        rows = await tx.fetch_all(
            f"SELECT {_COLUMNS} FROM links WHERE owner_id = ? AND url_hash = ? AND url = ? "
            "AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (owner_id, url_hash, url, now_ms))
        return [LinkRecord.from_row(r) for r in rows]

    async def page(self, owner_id: int | None, before_id: int, limit: int) -> list[LinkRecord]:
        """Links not deleted with an id below `before_id`, newest first: one owner's, or everyone's."""
        if owner_id is None:
            rows = await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM links WHERE id < ? AND deleted_at IS NULL ORDER BY id DESC LIMIT ?",
                (before_id, limit))
        else:
            rows = await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM links WHERE owner_id = ? AND id < ? AND deleted_at IS NULL "
                "ORDER BY id DESC LIMIT ?", (owner_id, before_id, limit))
        return [LinkRecord.from_row(r) for r in rows]

    async def mark_deleted(self, tx: Tx, link_id: int, now_ms: int) -> bool:
        """Delete a link, keeping its row (and so its code taken); its visits per day go. False if
        it was already deleted."""
        changed = await tx.execute("UPDATE links SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                                   (now_ms, link_id))
        await tx.execute("DELETE FROM link_visits WHERE link_id = ?", (link_id,))
        return changed == 1

    async def add_visits(self, counts: Sequence[tuple[int, int, int]]) -> None:
        """Add `(link_id, day, visits)` counts to the totals and the per-day rows, in one
        transaction. Only increments, so nodes flushing at once never lose each other's counts;
        rows are written in (link, day) order so that two such transactions on PostgreSQL take
        their row locks in the same order and cannot deadlock."""
        ordered = sorted(counts)
        totals: dict[int, int] = {}
        for link_id, _, visits in ordered:
            totals[link_id] = totals.get(link_id, 0) + visits

        async def write(tx: Tx) -> None:
            await tx.executemany("UPDATE links SET visits = visits + ? WHERE id = ?",
                                 [(visits, link_id) for link_id, visits in sorted(totals.items())])
            await tx.executemany(
                "INSERT INTO link_visits (link_id, day, visits) VALUES (?, ?, ?) "
                "ON CONFLICT (link_id, day) DO UPDATE SET visits = link_visits.visits + excluded.visits",
                ordered)

        await self._db.transaction("link_visits_add", write)

    async def visits_by_day(self, link_id: int, first_day: int, last_day: int) -> dict[int, int]:
        rows = await self._db.fetch_all(
            "SELECT day, visits FROM link_visits WHERE link_id = ? AND day >= ? AND day <= ?",
            (link_id, first_day, last_day))
        return {int(r["day"]): int(r["visits"]) for r in rows}

    async def forget_visits_before(self, day: int, batch: int) -> int:
        """Delete at most `batch` per-day rows of days before `day`; how many went."""
        return await self._db.execute(
            "link_visits_forget",
            "DELETE FROM link_visits WHERE (link_id, day) IN "
            "(SELECT link_id, day FROM link_visits WHERE day < ? LIMIT ?)", (day, batch))

    async def first_admin_id(self) -> int | None:
        """The oldest admin account (links an operator creates without naming an owner are its)."""
        row = await self._db.fetch_one("SELECT id FROM users WHERE is_admin = TRUE ORDER BY id LIMIT 1")
        return int(row["id"]) if row else None
