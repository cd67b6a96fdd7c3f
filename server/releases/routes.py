"""HTTP edge of app releases: the public update check, Tauri's updater endpoint, signed
downloads, and the admin API that publishes (PROTOCOL.md, "App releases", "Desktop updates")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import LuckyError, validation_failed
from ..files.model import BUFFER
from ..files.naming import content_disposition
from ..files.ranges import etag_matches
from ..keys import CORE
from ..web.bodies import json_response, list_body, parse_body, path_id, query_limit
from ..web.downloads import stream_bytes
from ..web.routing import RouteTable
from ..web.session import caller
from .service import NewRelease, ReleaseChanges, ReleaseService

routes = RouteTable("releases")
admin_routes = RouteTable("admin")

MAX_FIELD = 64 * 1024  # a text field of the upload form (notes, signature...)
_FIELDS = ("platform", "version", "channel", "notes", "min_version", "rollout", "arch", "signature", "publish")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class ReleasePatch(msgspec.Struct):
    notes: str | None = None
    min_version: str | None = None
    rollout: int | None = None


def _releases(request: web.Request) -> ReleaseService:
    return request.app[CORE].releases


@routes.get("/api/v1/releases/check", "Whether a newer app release is offered to this caller (no auth)",
            auth=False, query={"platform": "android, ios, windows, macos, linux or web",
                               "version": "the caller's version (semantic)",
                               "channel": "stable (default) or beta",
                               "device_id": "a stable id of the device: places it in a staged rollout",
                               "arch": "x86_64, aarch64, i686 or armv7: packages built for one arch"},
            responses={200: "{update, force, latest}", 422: "missing or bad platform, version or channel"})
async def check(request: web.Request) -> web.Response:
    query = request.query
    releases = _releases(request)
    answer = await releases.check(query.get("platform"), query.get("version"), query.get("channel"),
                                  query.get("device_id", ""), query.get("arch", ""))
    return json_response(releases.check_json(answer), headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/releases/tauri/{target}/{arch}/{current_version}",
            "Tauri's updater endpoint: 204 without a newer release, else its update JSON (no auth)",
            auth=False, query={"device_id": "a stable id of the device: places it in a staged rollout"},
            responses={200: "{version, notes, pub_date, url, signature}", 204: "no newer release",
                       404: "unknown target", 422: "current_version is not a semantic version"})
async def tauri(request: web.Request) -> web.Response:
    info = request.match_info
    body = await _releases(request).tauri(info["target"], info["arch"], info["current_version"],
                                          request.query.get("device_id", ""))
    if body is None:
        return web.Response(status=204, headers={"Cache-Control": "no-store"})
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/releases/{release_id}/download", "A release's package through a signed URL (Range, ETag)",
            auth=False, query={"exp": "signed URL: expiry, epoch ms", "sig": "signed URL: signature"},
            content_type="application/octet-stream",
            responses={200: "the package", 206: "a range", 304: "not modified", 403: "bad or expired signature",
                       404: "no such release", 410: "the release was yanked", 416: "range not satisfiable"})
async def download(request: web.Request) -> web.StreamResponse:
    releases = _releases(request)
    release = await releases.signed(path_id(request, "release_id"), request.query.get("exp"),
                                    request.query.get("sig"))
    etag = f'"{release.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400",
               "Content-Disposition": content_disposition("application/octet-stream", release.file_name),
               "X-Content-Type-Options": "nosniff"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return await stream_bytes(request, lambda offset, length: releases.open_package(release, offset, length),
                              release.size, etag, "application/octet-stream", headers, f"release {release.id}")


# --- the admin API ---------------------------------------------------------------------------


async def _text(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(8192):
        data += chunk
        if len(data) > MAX_FIELD:
            raise validation_failed(part.name or "field", f"at most {MAX_FIELD} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise validation_failed(part.name or "field", "UTF-8 text") from None


async def _stream(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(BUFFER):
        yield chunk


def _new_release(fields: dict[str, str]) -> tuple[NewRelease, bool]:
    rollout = fields.get("rollout", "").strip() or "100"
    if not (rollout.isascii() and rollout.isdigit()) or len(rollout) > 3:
        raise validation_failed("rollout", "a percentage from 0 to 100")
    publish = fields.get("publish", "").strip().lower()
    if publish not in _TRUE | _FALSE:
        raise validation_failed("publish", "true or false")
    return NewRelease(platform=fields.get("platform", ""), version=fields.get("version", "").strip(),
                      channel=fields.get("channel", ""), notes=fields.get("notes", ""),
                      min_version=fields.get("min_version", "").strip(), rollout=int(rollout),
                      arch=fields.get("arch", "").strip(), signature=fields.get("signature", "")), publish in _TRUE


@dataclass(frozen=True)
class ReleaseUpload:
    """A release form read up to its package: the fields, and the package still streaming."""

    release: NewRelease
    publish: bool
    package: AsyncIterator[bytes]  # read it (by `ReleaseService.create`) before anything else
    file_name: str


async def read_release_form(request: web.Request, max_package_mb: int) -> ReleaseUpload:
    """Read a multipart release form (the admin API's, the console's) up to its `file` part.

    The text fields (`platform`, `version`, `channel`, `notes`, `min_version`, `rollout`,
    `arch`, `signature`, `publish`) come first, the package last as `file`, so that it streams
    into the file store without being held; parts after `file` are not read, other fields are
    ignored. 415 if not multipart, 413 when the declared length is over the package limit,
    400 for a form that cannot be walked, 422 for a bad field or no `file`.
    """
    if not request.content_type.startswith("multipart/form-data"):
        raise LuckyError(415, "unsupported_media_type",
                         "Send the release as multipart/form-data: its fields, then the package as `file`.")
    limit = max_package_mb * 1024 * 1024
    if request.content_length is not None and request.content_length > limit + MAX_FIELD * len(_FIELDS):
        raise LuckyError(413, "payload_too_large", f"A package holds at most {max_package_mb} MB "
                                                   "(releases.max_package_mb).", {"limit_bytes": limit})
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise validation_failed("file", "required: the package, as a form field named `file` after the others")
            if not isinstance(part, BodyPartReader):
                await part.release()
            elif part.name == "file":
                break
            elif part.name in _FIELDS:
                fields[part.name] = await _text(part)
            else:
                await part.release()  # other fields are ignored, as unknown JSON fields are
    except (ValueError, HttpProcessingError):
        raise LuckyError(400, "invalid_request", "The body is not a well-formed multipart/form-data form.") from None
    new, publish = _new_release(fields)
    return ReleaseUpload(new, publish, _stream(part), part.filename or "")


@admin_routes.post("/api/v1/admin/releases",
                   "Create a release: multipart form, the fields first, then the package as `file` (admin)",
                   admin=True, responses={201: "the release (a draft unless publish=true)",
                                          409: "that version exists", 413: "over releases.max_package_mb",
                                          415: "not multipart/form-data", 422: "a bad or missing field"})
async def create(request: web.Request) -> web.Response:
    claims = caller(request)
    releases = _releases(request)
    form = await read_release_form(request, releases.config.max_package_mb)
    release = await releases.create(claims.user_id, form.release, form.package, form.file_name, publish=form.publish)
    return json_response(releases.to_json(release), status=201)


@admin_routes.get("/api/v1/admin/releases", "Releases, newest first (admin)", admin=True,
                  query={"limit": "page size", "cursor": "from the previous page", "platform": "only this platform",
                         "channel": "only this channel"})
async def list_releases(request: web.Request) -> web.Response:
    releases = _releases(request)
    rows, cursor = await releases.page(query_limit(request), request.query.get("cursor"),
                                       request.query.get("platform"), request.query.get("channel"))
    return json_response(list_body([releases.to_json(r) for r in rows], cursor))


@admin_routes.get("/api/v1/admin/releases/{release_id}", "One release (admin)", admin=True,
                  responses={200: "the release", 404: "no such release"})
async def get_release(request: web.Request) -> web.Response:
    releases = _releases(request)
    return json_response(releases.to_json(await releases.get(path_id(request, "release_id"))))


@admin_routes.post("/api/v1/admin/releases/{release_id}/publish", "Publish a draft release (admin)", admin=True,
                   responses={200: "the release", 404: "no such release", 409: "the release was yanked"})
async def publish(request: web.Request) -> web.Response:
    releases = _releases(request)
    release = await releases.publish(caller(request).user_id, path_id(request, "release_id"))
    return json_response(releases.to_json(release))


@admin_routes.post("/api/v1/admin/releases/{release_id}/yank", "Yank a release: never offered again (admin)",
                   admin=True, responses={200: "the release", 404: "no such release"})
async def yank(request: web.Request) -> web.Response:
    releases = _releases(request)
    release = await releases.yank(caller(request).user_id, path_id(request, "release_id"))
    return json_response(releases.to_json(release))


@admin_routes.patch("/api/v1/admin/releases/{release_id}", "Change rollout, notes or min_version (admin)",
                    admin=True, body=ReleasePatch,
                    responses={200: "the release", 404: "no such release", 422: "a bad field"})
async def update(request: web.Request) -> web.Response:
    body = await parse_body(request, ReleasePatch)
    releases = _releases(request)
    release = await releases.update(caller(request).user_id, path_id(request, "release_id"),
                                    ReleaseChanges(body.notes, body.min_version, body.rollout))
    return json_response(releases.to_json(release))
