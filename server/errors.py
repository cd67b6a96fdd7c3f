"""The one error type of Lucky, carried from services to every edge.

Services raise `LuckyError` with an HTTP status and a stable code from PROTOCOL.md; the HTTP
middleware renders it as the contract's JSON, the console as a page and the CLI as one line.
"""

from __future__ import annotations

import re
from typing import Any


class LuckyError(Exception):
    """A failure that a user or client can act on: status, stable code, message, details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_request(message: str) -> LuckyError:
    return LuckyError(400, "invalid_request", message)


def validation_failed(field: str, reason: str) -> LuckyError:
    return LuckyError(
        422, "validation_failed", f"{field}: {reason}", {"field": field, "reason": reason}
    )


def unauthorized(message: str = "Sign in first: send a valid access token.") -> LuckyError:
    return LuckyError(401, "unauthorized", message)


def forbidden(message: str) -> LuckyError:
    return LuckyError(403, "forbidden", message)


def not_found(message: str) -> LuckyError:
    return LuckyError(404, "not_found", message)


def conflict(message: str, details: dict[str, Any] | None = None) -> LuckyError:
    return LuckyError(409, "conflict", message, details)


def rate_limited(retry_after: int, message: str = "Too many requests; try again later.") -> LuckyError:
    return LuckyError(429, "rate_limited", message, {"retry_after": retry_after}, retry_after=retry_after)


def unavailable(message: str) -> LuckyError:
    return LuckyError(503, "unavailable", message)


# msgspec's validation messages: "Expected `int`, got `str` - at `$.seq`".
_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def field_of_error(message: str) -> tuple[str, str]:
    """The field a msgspec validation message names (dotted from the root) and why it failed.

    `Object missing required field `b` - at `$.a`` gives ("a.b", "required"); a message
    with no path names the whole "body".
    """
    missing = _MISSING.search(message)
    if missing:
        where = _PATH.search(message)
        prefix = f"{where.group(1)}." if where and where.group(1) else ""
        return prefix + missing.group(1), "required"
    where = _PATH.search(message)
    reason = _PATH.sub("", message).strip(" -") or "invalid"
    return (where.group(1) if where and where.group(1) else "body"), reason
