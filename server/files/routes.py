"""HTTP edge of files: /api/v1/files and /api/v1/uploads (PROTOCOL.md, "Files").

Request bodies are streamed from the socket to the files service, and downloads from the blob
store to the socket, about 1 MiB at a time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import unquote

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import LuckyError, validation_failed
from ..keys import CORE
from ..storage.stores.files import FileRow
from ..web.bodies import json_response, parse_body, path_id
from ..web.downloads import stream_bytes
from ..web.routing import RouteTable
from ..web.session import bearer_token, caller, claims_of
from .model import BUFFER, parse_content_md5
from .naming import content_disposition
from .ranges import etag_matches
from .service import FileService

log = logging.getLogger(__name__)
routes = RouteTable("files")

SIGNED_QUERY = {"exp": "signed URL: expiry, epoch ms", "sig": "signed URL: signature"}
# Content never changes under an id, so caches may keep it; `private`: it is not public data.
CACHE_CONTROL = "private, max-age=86400"


class OpenUpload(msgspec.Struct):
    name: str
    size: int
    md5: str
    mime: str | None = None
    chunk_size: int | None = None


class Complete(msgspec.Struct):
    proof: str | None = None


def _files(request: web.Request) -> FileService:
    return request.app[CORE].files


async def _read_stream(read: BodyPartReader | web.Request) -> AsyncIterator[bytes]:
    if isinstance(read, BodyPartReader):
        while chunk := await read.read_chunk(BUFFER):
            yield chunk
    else:
        while chunk := await read.content.read(BUFFER):
            yield chunk


@routes.post("/api/v1/files", "Upload one file (multipart/form-data, field `file`)",
             responses={201: "the file", 413: "over files.max_single_mb or the quota",
                        415: "not multipart/form-data", 422: "no `file` field, or a corrupt image"})
async def upload_file(request: web.Request) -> web.Response:
    claims = caller(request)
    if not request.content_type.startswith("multipart/form-data"):
        raise LuckyError(415, "unsupported_media_type", "Send the file as multipart/form-data, in a field named `file`.")
    files = _files(request)
    length = request.content_length
    if length is not None and length > files.max_single + BUFFER:  # headers of the form take a little
        raise LuckyError(413, "payload_too_large",
                         f"A single upload holds at most {files.config.max_single_mb} MB; use a chunked upload.",
                         {"limit_bytes": files.max_single})
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise validation_failed("file", "required: a form field named `file` holding the file")
            if isinstance(part, BodyPartReader) and part.name == "file":
                break
            await part.release()  # other fields are ignored, as unknown JSON fields are
    except (ValueError, HttpProcessingError):  # a form aiohttp cannot walk: no boundary, none found, bad part headers
        raise LuckyError(400, "invalid_request", "The body is not a well-formed multipart/form-data form.") from None
    # Clients percent-encode awkward characters of the name (HTML's form rules, aiohttp);
    # decoding can only make a path-like name, which the service reduces to its last segment.
    file = await files.upload_single(claims.user_id, unquote(part.filename or ""), part.headers.get("Content-Type"),
                                     _read_stream(part))
    return json_response(files.file_json(file), status=201)


@routes.post("/api/v1/uploads", "Start a chunked upload (with an instant-upload challenge when the content is known)",
             body=OpenUpload, responses={201: "the upload", 413: "over files.max_upload_mb or the quota"})
async def open_upload(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, OpenUpload)
    view = await _files(request).uploads.open(claims.user_id, body.name, body.size, body.md5, body.mime,
                                              body.chunk_size)
    return json_response(view.to_json(), status=201)


@routes.get("/api/v1/uploads/{upload_id}", "Which chunks of an upload arrived (for resuming)")
async def upload_status(request: web.Request) -> web.Response:
    claims = caller(request)
    view = await _files(request).uploads.status(claims.user_id, path_id(request, "upload_id"))
    return json_response(view.to_json())


@routes.put("/api/v1/uploads/{upload_id}/chunks/{index}", "Send one chunk (raw body, optional Content-MD5; idempotent)",
            content_type="application/octet-stream",
            responses={200: "the upload", 409: "already completed", 422: "bad index, length or Content-MD5"})
async def put_chunk(request: web.Request) -> web.Response:
    claims = caller(request)
    upload_id = path_id(request, "upload_id")
    raw_index = request.match_info["index"]
    if not (raw_index.isascii() and raw_index.isdigit()) or len(raw_index) > 9:
        raise validation_failed("index", "a chunk index (a whole number from 0)")
    content_md5 = parse_content_md5(request.headers.get("Content-MD5"))
    view = await _files(request).uploads.put_chunk(claims.user_id, upload_id, int(raw_index),
                                                   _read_stream(request), content_md5, request.content_length)
    return json_response(view.to_json())


@routes.post("/api/v1/uploads/{upload_id}/complete", "Finish an upload (or prove an instant upload)",
             body=Complete, responses={201: "the file", 200: "the file, completed before",
                                       409: "chunks missing (details.missing)", 422: "checksum_mismatch"})
async def complete_upload(request: web.Request) -> web.Response:
    claims = caller(request)
    body = await parse_body(request, Complete)
    files = _files(request)
    file, created = await files.uploads.complete(claims.user_id, path_id(request, "upload_id"), body.proof)
    return json_response(files.file_json(file), status=201 if created else 200)


@routes.get("/api/v1/files/{file_id}", "A file's description (with fresh signed URLs)")
async def get_file(request: web.Request) -> web.Response:
    claims = caller(request)
    files = _files(request)
    return json_response(files.file_json(await files.readable(claims.user_id, path_id(request, "file_id"))))


async def _authorized(request: web.Request, variant: str) -> FileRow:
    """The file, for a valid signed URL or a bearer token of someone who may read it."""
    files = _files(request)
    file_id = path_id(request, "file_id")
    if "sig" in request.query or "exp" in request.query:
        try:
            return await files.signed(file_id, variant, request.query.get("exp"), request.query.get("sig"))
        except LuckyError:
            if bearer_token(request) is None:
                raise
            # A stale link from a client that also signs in: its token still decides.
    claims = await claims_of(request)
    return await files.readable(claims.user_id, file_id)


def _headers(file: FileRow, etag: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(file.mime, file.name),
        "X-Content-Type-Options": "nosniff",
        # Even if a browser were to render it, a stored file gets no script and no origin.
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
    }


@routes.get("/api/v1/files/{file_id}/content", "A file's bytes (bearer token or signed URL; Range, ETag)",
            auth=False, query=SIGNED_QUERY, content_type="application/octet-stream",
            responses={200: "the bytes", 206: "a range", 302: "presigned S3 URL (files.s3_presign)",
                       304: "not modified", 403: "bad or expired signature", 404: "no such file",
                       416: "range not satisfiable"})
async def content(request: web.Request) -> web.StreamResponse:
    file = await _authorized(request, "content")
    files = _files(request)
    etag = f'"{file.md5}"'
    headers = _headers(file, etag)
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    presigned = await files.presigned_url(file, headers["Content-Disposition"])
    if presigned is not None:
        return web.Response(status=302, headers={"Location": presigned, "Cache-Control": "no-store"})
    return await stream_bytes(request, lambda offset, length: files.open_content(file, offset, length), file.size,
                              etag, file.mime, headers, f"file {file.id}")


@routes.get("/api/v1/files/{file_id}/thumbnail", "An image's thumbnail (bearer token or signed URL)",
            auth=False, query=SIGNED_QUERY, content_type="image/webp",
            responses={200: "the thumbnail", 304: "not modified", 404: "no such file, or not an image"})
async def thumbnail(request: web.Request) -> web.Response:
    file = await _authorized(request, "thumbnail")
    return await thumbnail_response(request, _files(request), file)


async def thumbnail_response(request: web.Request, files: FileService, file: FileRow) -> web.Response:
    """An image file's thumbnail as an answer."""
    etag = f'"{file.md5}-t{files.config.thumbnail_px}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        if file.blob.image_format is None:
            await files.thumbnail(file)  # 404 for a file that is not an image
        return web.Response(status=304, headers=headers)
    data, mime = await files.thumbnail(file)
    return web.Response(body=data, content_type=mime, headers=headers)
