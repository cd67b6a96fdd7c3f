"""The one place where errors become the contract's JSON, where requests are measured, and
where the caller is authenticated (`auth_middleware`)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import LuckyError, forbidden
from ..keys import CORE, METRICS
from .bodies import json_response
from .routing import spec_of
from .session import claims_of

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "unavailable",
}
_STATUS_MESSAGES = {
    404: "Nothing is here: check the path against /api/v1/openapi.json.",
    405: "This path does not take that method.",
    413: "The request body is too large.",
}


def error_response(error: LuckyError) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return json_response(error.to_body(), status=error.status, headers=headers)


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except LuckyError as error:
        status = error.status
        return error_response(error)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "invalid_request")
        message = _STATUS_MESSAGES.get(exc.status, exc.reason)
        response = error_response(LuckyError(exc.status, code, message))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(LuckyError(500, "internal", "Something went wrong on the server; it was logged."))
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            route = _route_label(request)
            metrics.http_requests.labels(request.method, route, str(status)).inc()
            metrics.http_seconds.labels(request.method, route).observe(time.perf_counter() - started)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate before the handler of every route whose `RouteSpec` says `auth=True`.

    So a 401 never depends on a handler remembering to ask: handlers read the verified claims
    with `session.caller`. A matched route without a spec is treated as `auth=True` (a route
    is public only by saying so). A route with `admin=True` also answers 403 to a caller whose
    account is not an admin's. Unmatched paths (404, 405) pass through to their error.
    Runs inside `error_middleware`, which renders the 401 and counts it.
    """
    if request.match_info.http_exception is None:
        spec = spec_of(request.match_info.handler)
        if spec is None or spec.auth or spec.admin:
            claims = await claims_of(request, query_token=spec is not None and spec.query_token)
            if spec is not None and spec.admin:
                user = await request.app[CORE].users.get(claims.user_id)
                if not user.is_admin:
                    raise forbidden("This needs an admin account.")
    return await handler(request)
