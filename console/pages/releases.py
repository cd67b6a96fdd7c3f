"""The releases page: releases newest first (of one platform and channel, or all), a package
uploaded with its metadata, publish, yank and the rollout percentage.

The upload is a plain multipart form that works without JavaScript; `releases.js` sends the
same form with XMLHttpRequest to show its upload progress. The body streams into the file store
(it is never held in memory): the route takes the raw body, and the CSRF token comes in the
form's action URL (`?csrf=`), read before a byte of the body is. Every change is written to the
audit log by the release service itself, with the signed-in admin as its actor.
"""

from __future__ import annotations

import re

from aiohttp import web

from lucky_server.errors import validation_failed
from lucky_server.releases.routes import read_release_form
from lucky_server.releases.service import ReleaseChanges
from lucky_server.releases.versions import ARCHES, CHANNELS, PLATFORMS
from lucky_server.web.bodies import path_id

from ..web import PREFIX, Pages, Visit

pages = Pages()

PAGE = 50
_BACK = re.compile(re.escape(PREFIX) + r"/releases(\?[A-Za-z0-9=&%_.-]*)?")


@pages.get(f"{PREFIX}/releases", "App releases: list, upload, publish, yank, rollout")
async def releases(visit: Visit) -> web.StreamResponse:
    service = visit.core.releases
    platform, channel = visit.query("platform"), visit.query("channel")
    cursor = visit.query("cursor") or None
    rows, next_cursor = await service.page(PAGE, cursor, platform or None, channel or None)
    return visit.render(
        "releases.html", title="Releases", releases=rows, platform=platform, channel=channel,
        platforms=PLATFORMS, channels=CHANNELS, arches=ARCHES, download_url=service.download_url,
        max_mb=service.config.max_package_mb, request_path=visit.request.path_qs,
        next_url=visit.url(f"{PREFIX}/releases", platform=platform, channel=channel, cursor=next_cursor)
        if next_cursor else "",
        first_url=visit.url(f"{PREFIX}/releases", platform=platform, channel=channel) if cursor else "")


@pages.post(f"{PREFIX}/releases", "Upload a release package with its metadata", raw_body=True)
async def upload(visit: Visit) -> web.StreamResponse:
    service = visit.core.releases
    form = await read_release_form(visit.request, service.config.max_package_mb)
    release = await service.create(visit.admin.id, form.release, form.package, form.file_name, publish=form.publish)
    state = "published" if form.publish else "a draft: publish it to offer it"
    await visit.redirect(f"{PREFIX}/releases", flash=f"Release {release.platform} {release.channel} "
                                                     f"{release.version} uploaded ({release.size} bytes), {state}.")


def _release_id(visit: Visit) -> int:
    return path_id(visit.request, "release_id")


@pages.post(f"{PREFIX}/releases/{{release_id}}/publish", "Publish a draft release")
async def publish(visit: Visit) -> web.StreamResponse:
    release = await visit.core.releases.publish(visit.admin.id, _release_id(visit))
    await visit.redirect(_back(visit), flash=f"Release {release.platform} {release.channel} {release.version} "
                                             "published: the update check offers it now.")


@pages.post(f"{PREFIX}/releases/{{release_id}}/yank", "Yank a release")
async def yank(visit: Visit) -> web.StreamResponse:
    release = await visit.core.releases.yank(visit.admin.id, _release_id(visit))
    await visit.redirect(_back(visit), flash=f"Release {release.platform} {release.channel} {release.version} "
                                             "yanked: it is never offered again and its download links stop working.")


@pages.post(f"{PREFIX}/releases/{{release_id}}/rollout", "Change a release's rollout percentage")
async def rollout(visit: Visit) -> web.StreamResponse:
    text = visit.field("rollout").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        raise validation_failed("rollout", "a percentage from 0 to 100")
    release = await visit.core.releases.update(visit.admin.id, _release_id(visit), ReleaseChanges(rollout=int(text)))
    await visit.redirect(_back(visit), flash=f"Release {release.platform} {release.channel} {release.version} "
                                             f"now reaches {release.rollout}% of devices.")


def _back(visit: Visit) -> str:
    """The list as it was filtered (the form's hidden `back`), else the whole list."""
    back = visit.field("back")
    return back if _BACK.fullmatch(back) else f"{PREFIX}/releases"
