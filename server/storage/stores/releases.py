"""App releases: one row per package of a platform, channel, arch and version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import Database, Row, Tx


@dataclass(frozen=True)
class ReleaseRow:
    id: int
    platform: str
    channel: str
    arch: str  # "" for any
    version: str
    version_key: str
    notes: str
    min_version: str  # "" for none
    blob_id: int
    blob_key: str
    file_name: str
    size: int
    sha256: str
    signature: str  # Tauri's updater signature ("" for none)
    rollout: int  # percent of devices offered this release
    state: str  # draft, published, yanked
    created_by: int | None
    created_at: int
    published_at: int | None
    yanked_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> ReleaseRow:
        return cls(int(row["id"]), row["platform"], row["channel"], row["arch"], row["version"], row["version_key"],
                   row["notes"], row["min_version"], int(row["blob_id"]), row["blob_key"], row["file_name"],
                   int(row["size"]), row["sha256"], row["signature"], int(row["rollout"]), row["state"],
                   _opt_int(row["created_by"]), int(row["created_at"]), _opt_int(row["published_at"]),
                   _opt_int(row["yanked_at"]))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


_SELECT = ("SELECT r.id, r.platform, r.channel, r.arch, r.version, r.version_key, r.notes, r.min_version, r.blob_id, "
           "b.blob_key, r.file_name, r.size, r.sha256, r.signature, r.rollout, r.state, r.created_by, r.created_at, "
           "r.published_at, r.yanked_at FROM releases r JOIN blobs b ON b.id = r.blob_id ")


class ReleaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, tx: Tx, release: ReleaseRow, revision: int) -> None:
        await tx.execute(
            "INSERT INTO releases (id, platform, channel, arch, version, version_key, notes, min_version, blob_id, "
            "file_name, size, sha256, signature, rollout, state, created_by, created_at, published_at, yanked_at, "
            "revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (release.id, release.platform, release.channel, release.arch, release.version, release.version_key,
             release.notes, release.min_version, release.blob_id, release.file_name, release.size, release.sha256,
             release.signature, release.rollout, release.state, release.created_by, release.created_at,
             release.published_at, release.yanked_at, revision))

    async def get(self, release_id: int, tx: Tx | None = None) -> ReleaseRow | None:
        sql, params = _SELECT + "WHERE r.id = ?", (release_id,)
        row = await (tx.fetch_one(sql, params) if tx is not None else self._db.fetch_one(sql, params))
        return ReleaseRow.from_row(row) if row else None

    async def exists(self, platform: str, channel: str, arch: str, version_key: str) -> int | None:
        """The id of the release of that platform, channel, arch and version, if there is one."""
        row = await self._db.fetch_one(
            "SELECT id FROM releases WHERE platform = ? AND channel = ? AND arch = ? AND version_key = ?",
            (platform, channel, arch, version_key))
        return int(row["id"]) if row else None

    async def of_version(self, platform: str, version_key: str) -> list[ReleaseRow]:
        """Every release (any channel or arch) of one version of a platform."""
        rows = await self._db.fetch_all(_SELECT + "WHERE r.platform = ? AND r.version_key = ? ORDER BY r.id",
                                        (platform, version_key))
        return [ReleaseRow.from_row(r) for r in rows]

    async def published(self, platform: str, channels: Sequence[str]) -> list[ReleaseRow]:
        """The published (offerable) releases of a platform in these channels."""
        marks = ", ".join("?" for _ in channels)
        rows = await self._db.fetch_all(
            _SELECT + f"WHERE r.platform = ? AND r.state = 'published' AND r.channel IN ({marks})",
            (platform, *channels))
        return [ReleaseRow.from_row(r) for r in rows]

    async def page(self, before_id: int, limit: int, platform: str | None, channel: str | None) -> list[ReleaseRow]:
        """Releases newest first (by id) below `before_id`, optionally of one platform and channel."""
        where: list[str] = ["r.id < ?"]
        params: list[object] = [before_id]
        if platform:
            where.append("r.platform = ?")
            params.append(platform)
        if channel:
            where.append("r.channel = ?")
            params.append(channel)
        rows = await self._db.fetch_all(_SELECT + f"WHERE {' AND '.join(where)} ORDER BY r.id DESC LIMIT ?",
                                        (*params, limit))
        return [ReleaseRow.from_row(r) for r in rows]

    async def set_state(self, tx: Tx, release_id: int, state: str, at: int, revision: int) -> int:
        """Publish (from a draft) or yank (from anything but yanked); rows changed."""
        if state == "published":
            return await tx.execute(
                "UPDATE releases SET state = 'published', published_at = ?, revision = ? "
                "WHERE id = ? AND state = 'draft'", (at, revision, release_id))
        return await tx.execute(
            "UPDATE releases SET state = 'yanked', yanked_at = ?, revision = ? WHERE id = ? AND state <> 'yanked'",
            (at, revision, release_id))

    async def change(self, tx: Tx, release_id: int, notes: str, min_version: str, rollout: int,
                     revision: int) -> int:
        return await tx.execute(
            "UPDATE releases SET notes = ?, min_version = ?, rollout = ?, revision = ? WHERE id = ?",
            (notes, min_version, rollout, revision, release_id))

    async def revision(self) -> int:
        """The latest change to any release (0 for none): a change by any process moves it."""
        row = await self._db.fetch_one("SELECT MAX(revision) AS n FROM releases")
        return int(row["n"]) if row and row["n"] is not None else 0
