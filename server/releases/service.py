"""The app releases' rules: creating a release from a package stream, publishing, yanking,
changing rollout and notes, the public update check, Tauri's updater answer, signed downloads.

Used by three edges: the HTTP routes (`routes.py`), the console's releases page and the CLI
(`lucky release ...`). Every change is written to the audit log in the transaction that makes
it; `actor_id` is the admin who made it (None for the CLI, run by whoever owns the instance).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..blobs import BlobNotFound, BlobReader
from ..clock import Clock
from ..config import ReleasesConfig
from ..cursors import decode_cursor, encode_cursor
from ..errors import LuckyError, conflict, not_found, validation_failed
from ..bus import Bus
from ..files.model import MIB, coalesce, payload_too_large
from ..files.naming import clean_name
from ..files.service import FileService
from ..files.signing import UrlSigner
from ..ids import MAX_ID, Snowflake
from ..storage import Database, Tx, UniqueViolation
from ..storage.stores.audit import AuditStore
from ..storage.stores.releases import ReleaseRow, ReleaseStore
from .offers import OfferCache, choose
from .versions import (CHANNELS, PLATFORMS, TAURI_TARGETS, Version, check_rollout, gone, parse_version,
                       require_arch, require_choice, require_version, version_key)

log = logging.getLogger(__name__)

MAX_NOTES = 20_000
MAX_SIGNATURE = 8192  # a minisign signature as Tauri writes it is about 400 characters
RELEASES = "releases"  # the bus topic of release changes (the update checks' caches drop their views)
SIGNED_VARIANT = "release"  # what a download URL signs, so a file's signed URL cannot open a release


@dataclass(frozen=True)
class NewRelease:
    """What a release is made of, besides its package (raw input: checked by `create`)."""

    platform: str
    version: str
    channel: str = "stable"
    notes: str = ""
    min_version: str = ""
    rollout: int = 100
    arch: str = ""
    signature: str = ""  # the content of Tauri's .sig file for the package


@dataclass(frozen=True)
class ReleaseChanges:
    """A change to a release: None leaves a field as it is; min_version "" removes it."""

    notes: str | None = None
    min_version: str | None = None
    rollout: int | None = None


@dataclass(frozen=True)
class CheckAnswer:
    update: bool
    force: bool
    latest: ReleaseRow | None


def rfc3339(ms: int) -> str:
    """An epoch-milliseconds time as RFC 3339 in UTC, to the second (Tauri's `pub_date`)."""
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReleaseService:
    def __init__(self, db: Database, files: FileService, config: ReleasesConfig, clock: Clock, ids: Snowflake,
                 url_signing_key: bytes, public_url: str, bus: Bus) -> None:
        """`files` stores and reads the packages' bytes (its blob store, with sha256 and size);
        `bus` tells every node to drop its update-check cache when a release changes."""
        self._db = db
        self._files = files
        self.config = config
        self._clock = clock
        self._ids = ids
        self.store = ReleaseStore(db)
        self._audit = AuditStore(db)
        self.offers = OfferCache(self.store)
        self._bus = bus
        bus.on(RELEASES, self._changed_somewhere)
        self._signer = UrlSigner(url_signing_key, config.url_ttl_s)
        self._public_url = public_url

    async def _changed_somewhere(self, payload: dict[str, Any]) -> None:
        self.offers.invalidate()

    # --- publishing ------------------------------------------------------------------------

    async def create(self, actor_id: int | None, new: NewRelease, package: AsyncIterable[bytes], file_name: str,
                     *, publish: bool = False) -> ReleaseRow:
        """Make a release from a package stream (a draft, or published at once with `publish`).

        The one entry point for every edge: the admin API and the console stream an upload,
        the CLI a file. Every field is checked before a byte is stored (422 naming the field;
        409 when that platform, channel and arch already has the version, yanked or not); the
        package is streamed into the file store, hashed (sha256, size), and refused past
        `releases.max_package_mb` (413) or when empty (422), leaving nothing behind.
        """
        platform = require_choice(new.platform, "platform", PLATFORMS)
        channel = require_choice(new.channel, "channel", CHANNELS, "stable")
        version = require_version(new.version, "version")
        arch = require_arch(platform, new.arch)
        min_version = self._min_version(new.min_version, version)
        notes = self._notes(new.notes)
        rollout = check_rollout(new.rollout)
        signature = new.signature.strip()
        if len(signature) > MAX_SIGNATURE or not signature.isascii():
            raise validation_failed("signature", f"the content of the updater's .sig file (ASCII, at most "
                                                 f"{MAX_SIGNATURE} characters)")
        key = version_key(version)
        if await self.store.exists(platform, channel, arch, key) is not None:
            raise self._taken(platform, channel, arch, key)
        name = clean_name(file_name) or f"{platform}-{key}.bin"
        limit = self.config.max_package_mb * MIB
        content = await self._files.store_content(
            coalesce(package), limit=limit,
            too_large=payload_too_large(f"A package holds at most {self.config.max_package_mb} MB "
                                        "(releases.max_package_mb).", limit_bytes=limit))
        if content.blob.size == 0:
            raise validation_failed("file", "the package is empty")
        now = self._clock.now_ms()
        release = ReleaseRow(self._ids.next_id(), platform, channel, arch, str(version), key, notes,
                             min_version, content.blob.id, content.blob.key, name, content.blob.size,
                             content.blob.sha256, signature, rollout, "published" if publish else "draft",
                             actor_id, now, now if publish else None, None)

        async def write(tx: Tx) -> None:
            if content.fresh:
                await self._files.store.insert_blob(tx, content.blob)
            await self.store.insert(tx, release, self._ids.next_id())
            await self._record(tx, actor_id, "release.create", release,
                               {"file": name, "size": release.size, "sha256": release.sha256,
                                "rollout": rollout, "published": publish})

        try:
            await self._db.transaction("release_create", write)
        except UniqueViolation:  # the same version created at the same moment
            raise self._taken(platform, channel, arch, key) from None
        await self._bus.broadcast(RELEASES, {})  # every node's update check sees it at once
        log.info("release %s created: %s %s %s%s, %d bytes, %s", release.id, platform, channel, release.version,
                 f" {arch}" if arch else "", release.size, release.state)
        return release

    async def publish(self, actor_id: int | None, release_id: int) -> ReleaseRow:
        """Offer a draft (published again: unchanged; yanked: 409, a yanked release stays so)."""
        release = await self.get(release_id)
        if release.state == "published":
            return release
        if release.state == "yanked":
            raise conflict("This release was yanked; publish a new version instead.", {"state": "yanked"})
        return await self._change_state(actor_id, release, "published")

    async def yank(self, actor_id: int | None, release_id: int) -> ReleaseRow:
        """Withdraw a release: never offered again, its download links refused (410)."""
        release = await self.get(release_id)
        if release.state == "yanked":
            return release
        return await self._change_state(actor_id, release, "yanked")

    async def _change_state(self, actor_id: int | None, release: ReleaseRow, state: str) -> ReleaseRow:
        now = self._clock.now_ms()

        async def write(tx: Tx) -> ReleaseRow | None:
            if not await self.store.set_state(tx, release.id, state, now, self._ids.next_id()):
                return None  # changed by someone else in the meantime
            await self._record(tx, actor_id, f"release.{'publish' if state == 'published' else 'yank'}",
                               release, {"from": release.state})
            return await self.store.get(release.id, tx)

        changed = await self._db.transaction(f"release_{state}", write)
        await self._bus.broadcast(RELEASES, {})  # every node's update check sees it at once
        if changed is None:
            return await self.get(release.id)
        log.info("release %s (%s %s %s) %s", release.id, release.platform, release.channel, release.version, state)
        return changed

    async def update(self, actor_id: int | None, release_id: int, changes: ReleaseChanges) -> ReleaseRow:
        """Change a release's notes, minimum supported version or rollout percentage."""
        release = await self.get(release_id)
        version = parse_version(release.version)
        assert version is not None
        notes = release.notes if changes.notes is None else self._notes(changes.notes)
        min_version = (release.min_version if changes.min_version is None
                       else self._min_version(changes.min_version, version))
        rollout = release.rollout if changes.rollout is None else check_rollout(changes.rollout)
        updated = replace(release, notes=notes, min_version=min_version, rollout=rollout)
        if updated == release:
            return release
        before = {k: v for k, v in (("notes", release.notes), ("min_version", release.min_version),
                                    ("rollout", release.rollout)) if getattr(updated, k) != v}

        async def write(tx: Tx) -> None:
            await self.store.change(tx, release.id, notes, min_version, rollout, self._ids.next_id())
            await self._record(tx, actor_id, "release.update", release,
                               {"before": before, "after": {k: getattr(updated, k) for k in before}})

        await self._db.transaction("release_update", write)
        await self._bus.broadcast(RELEASES, {})  # every node's update check sees it at once
        return updated

    def _min_version(self, text: str, version: Version) -> str:
        if not text:
            return ""
        minimum = require_version(text, "min_version")
        if minimum > version:
            raise validation_failed("min_version", f"at most the release's own version {version}")
        return str(minimum)

    @staticmethod
    def _notes(notes: str) -> str:
        if len(notes) > MAX_NOTES:
            raise validation_failed("notes", f"at most {MAX_NOTES} characters")
        return notes

    @staticmethod
    def _taken(platform: str, channel: str, arch: str, key: str) -> LuckyError:
        where = f"{platform} {channel}" + (f" {arch}" if arch else "")
        return conflict(f"{where} already has a release {key}; versions are never reused, publish a newer one.",
                        {"field": "version"})

    async def _record(self, tx: Tx, actor_id: int | None, action: str, release: ReleaseRow,
                      details: dict[str, object]) -> None:
        await self._audit.record(tx, self._ids.next_id(), self._clock.now_ms(), actor_id, action, str(release.id),
                                 {"platform": release.platform, "channel": release.channel, "arch": release.arch,
                                  "version": release.version, **details})

    # --- reading ---------------------------------------------------------------------------

    async def get(self, release_id: int) -> ReleaseRow:
        release = await self.store.get(release_id)
        if release is None:
            raise not_found("No such release.")
        return release

    async def of_version(self, platform: str, version: str) -> list[ReleaseRow]:
        """Every release of that version of a platform (any channel or arch), oldest first."""
        platform = require_choice(platform, "platform", PLATFORMS)
        return await self.store.of_version(platform, version_key(require_version(version, "version")))

    async def page(self, limit: int, cursor: str | None = None, platform: str | None = None,
                   channel: str | None = None) -> tuple[list[ReleaseRow], str | None]:
        """Releases newest first, `limit` at a time, optionally of one platform and channel;
        the cursor of the next page (None at the end)."""
        if platform:
            require_choice(platform, "platform", PLATFORMS)
        if channel:
            require_choice(channel, "channel", CHANNELS)
        before = decode_cursor(cursor, "releases", int)[0] if cursor else MAX_ID
        rows = await self.store.page(before, limit + 1, platform, channel)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor("releases", rows[-1].id) if more else None

    def to_json(self, release: ReleaseRow) -> dict[str, Any]:
        """A release as the admin API and the console show it."""
        return {"id": str(release.id), "platform": release.platform, "channel": release.channel,
                "arch": release.arch, "version": release.version, "notes": release.notes,
                "min_version": release.min_version or None, "file_name": release.file_name, "size": release.size,
                "sha256": release.sha256, "signature": release.signature or None, "rollout": release.rollout,
                "state": release.state, "created_at": release.created_at, "published_at": release.published_at,
                "yanked_at": release.yanked_at, "download_url": self.download_url(release)}

    # --- the update check -----------------------------------------------------------------

    async def check(self, platform: str | None, version: str | None, channel: str | None = None,
                    device_id: str = "", arch: str = "") -> CheckAnswer:
        """What a caller on `version` of `platform` is offered (PROTOCOL.md, "App releases").

        `latest` is the newest published release the caller may get (by arch and staged
        rollout; see `Offer.admits`), `update` whether it is newer than the caller's version,
        `force` whether the caller's version is below its minimum supported version. Served
        from memory once loaded (see `offers`).
        """
        platform = require_choice(platform, "platform", PLATFORMS)
        current = require_version(version, "version")
        channel = require_choice(channel, "channel", CHANNELS, "stable")
        if arch:
            arch = require_choice(arch, "arch", ("x86_64", "aarch64", "i686", "armv7"))
        offer = choose(await self.offers.offers(platform, channel), arch, device_id)
        if offer is None:
            return CheckAnswer(False, False, None)
        force = offer.min_version is not None and current < offer.min_version
        return CheckAnswer(current < offer.version, force, offer.release)

    def check_json(self, answer: CheckAnswer) -> dict[str, Any]:
        latest = answer.latest
        return {"update": answer.update, "force": answer.force, "latest": None if latest is None else {
            "version": latest.version, "notes": latest.notes, "size": latest.size, "sha256": latest.sha256,
            "download_url": self.download_url(latest), "published_at": latest.published_at}}

    async def tauri(self, target: str, arch: str, current_version: str, device_id: str = "") -> dict[str, Any] | None:
        """Tauri's updater answer (a dynamic update server), or None for "no update" (204).

        `target` is Tauri's `{{target}}` (windows, darwin, linux; anything else is 404, a
        misconfigured endpoint); an arch no package can have (riscv64...) has no update.
        Only stable releases carrying an updater signature are offered: Tauri refuses an
        update without one.
        """
        platform = TAURI_TARGETS.get(target)
        if platform is None:
            raise not_found(f"No such Tauri target {target!r}: use windows, darwin or linux ({{{{target}}}}).")
        current = require_version(current_version, "current_version")
        offer = choose(await self.offers.offers(platform, "stable"), arch, device_id, signed_only=True)
        if offer is None or not current < offer.version:
            return None
        release = offer.release
        assert release.published_at is not None
        return {"version": release.version, "notes": release.notes, "pub_date": rfc3339(release.published_at),
                "url": self.download_url(release), "signature": release.signature}

    # --- downloads ------------------------------------------------------------------------

    def download_url(self, release: ReleaseRow) -> str:
        """A URL that downloads the package without a token, for `releases.url_ttl_s` or more."""
        query = self._signer.query(release.id, SIGNED_VARIANT, self._clock.now_ms())
        return f"{self._public_url}/api/v1/releases/{release.id}/download?{query}"

    async def signed(self, release_id: int, exp: str | None, sig: str | None) -> ReleaseRow:
        """The release a download URL names; 403 if altered or expired, 410 once yanked."""
        problem = self._signer.check(release_id, SIGNED_VARIANT, exp, sig, self._clock.now_ms())
        if problem is not None:
            raise LuckyError(403, "forbidden", f"This download link cannot be used: {problem}.", {"reason": problem})
        release = await self.get(release_id)
        if release.state == "yanked":
            raise gone("This release was withdrawn (yanked); check for updates again.")
        return release

    async def open_package(self, release: ReleaseRow, offset: int = 0, length: int | None = None) -> BlobReader:
        try:
            return await self._files.blobs.read(release.blob_key, offset, length)
        except BlobNotFound:
            log.error("the package of release %s (blob %s) is missing from %s", release.id, release.blob_key,
                      self._files.blobs.description)
            raise not_found("The release's package is missing from storage.") from None
