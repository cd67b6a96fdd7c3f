"""Which release a caller is offered: the in-memory view of published releases per
(platform, channel), and the choice among them by version, arch and staged rollout.

The update check is public and called by every app at every start, so it never queries the
database while its view is cached: the view is loaded once per (platform, channel) and
dropped on every change (create, publish, yank, rollout), on every node at once through the
bus (topic `releases`), and when the releases' `revision` moves (the safety net for a change
whose broadcast was lost, or made by a process that could not reach Redis; looked for every
`releases.poll_s` seconds).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..storage.stores.releases import ReleaseRow, ReleaseStore
from .versions import Version, parse_version, rollout_bucket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """A published release with its parsed versions."""

    release: ReleaseRow
    version: Version
    min_version: Version | None

    def admits(self, arch: str, device_id: str) -> bool:
        """Whether a device of this arch ("" unknown) and id ("" none) is offered the release.

        A package built for one arch goes only to callers naming that arch; an arch-less one to
        everyone. Without a device id only a release rolled out to 100% is offered: a caller
        that cannot be placed in the rollout gets what everyone gets.
        """
        release = self.release
        if release.arch and release.arch != arch:
            return False
        if release.rollout >= 100:
            return True
        return bool(device_id) and rollout_bucket(release.id, device_id) < release.rollout


def channels_seen(channel: str) -> tuple[str, ...]:
    """The beta channel also sees stable releases (a newer stable release supersedes a beta)."""
    return ("stable", "beta") if channel == "beta" else ("stable",)


class OfferCache:
    def __init__(self, store: ReleaseStore) -> None:
        self._store = store
        self._views: dict[tuple[str, str], list[Offer]] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[list[Offer]]] = {}
        self._generation = 0
        self._seen_revision: int | None = None
        self.loads = 0  # database reads made to fill the view (tests check a cached check makes none)

    def invalidate(self) -> None:
        """Forget every view: the next check of each (platform, channel) reads the database."""
        self._generation += 1
        self._views.clear()
        self._loading.clear()

    async def offers(self, platform: str, channel: str) -> list[Offer]:
        """Published releases a caller of this platform and channel may be offered, newest first."""
        key = (platform, channel)
        view = self._views.get(key)
        if view is not None:
            return view
        pending = self._loading.get(key)
        if pending is None:  # one read however many callers miss at once
            pending = asyncio.ensure_future(self._load(platform, channel, self._generation))
            self._loading[key] = pending
        return await asyncio.shield(pending)

    async def _load(self, platform: str, channel: str, generation: int) -> list[Offer]:
        key = (platform, channel)
        try:
            self.loads += 1
            rows = await self._store.published(platform, channels_seen(channel))
            view = sorted(_offers(rows), key=lambda o: (o.version, o.release.arch != "",
                                                        o.release.channel == channel), reverse=True)
            if generation == self._generation:  # not dropped by a change while it was read
                self._views[key] = view
            return view
        finally:
            if generation == self._generation:
                self._loading.pop(key, None)

    async def refresh_if_changed(self) -> bool:
        """Drop the views if any release changed since the last look (one cheap query)."""
        revision = await self._store.revision()
        changed = self._seen_revision is not None and revision != self._seen_revision
        self._seen_revision = revision
        if changed:
            log.info("releases changed elsewhere; the update check's cache is refreshed")
            self.invalidate()
        return changed

    async def watch_forever(self, every_s: float) -> None:
        """Look for releases changed by another process every `every_s` seconds, until cancelled."""
        while True:
            try:
                await self.refresh_if_changed()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the watch
                log.warning("could not look for changed releases", exc_info=True)
            await asyncio.sleep(every_s)


def _offers(rows: list[ReleaseRow]) -> list[Offer]:
    found = []
    for row in rows:
        version = parse_version(row.version)
        if version is None:  # stored by this code, so parsed before; skipped rather than a 500
            log.error("release %s has an unparsable version %r", row.id, row.version)
            continue
        found.append(Offer(row, version, parse_version(row.min_version) if row.min_version else None))
    return found


def choose(offers: list[Offer], arch: str, device_id: str, *, signed_only: bool = False) -> Offer | None:
    """The newest release this caller is offered, or None."""
    for offer in offers:
        if signed_only and not offer.release.signature:
            continue
        if offer.admits(arch, device_id):
            return offer
    return None
