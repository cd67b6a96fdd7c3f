"""What the contract (PROTOCOL.md) lets a client see, as checks shared by the fuzz tests.

Every check raises AssertionError naming the input that led to what it saw, so that a
failure report says which request or frame broke the rule.
"""

from __future__ import annotations

import re
from typing import Any

# PROTOCOL.md, "Conventions": the codes with a fixed status.
HTTP_STATUS_OF_CODE = {
    "invalid_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "gone": 410,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_failed": 422,
    "rate_limited": 429,
    "unavailable": 503,
}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")

# PROTOCOL.md, "Server to client": `error` codes; docs/protocol.md adds `conflict` (editing a
# recalled message) and `unavailable` (the server is shutting down).
WS_ERROR_CODES = {"invalid_frame", "rate_limited", "forbidden", "not_found", "too_large", "validation_failed",
                  "blocked", "unauthorized", "conflict", "unavailable"}
BAD_FRAME_CODES = {"invalid_frame", "validation_failed"}  # the ones that count towards the 1008 close
SERVER_FRAME_TYPES = {"welcome", "pong", "sent", "sync.result", "ok", "error", "message", "message.updated",
                      "receipt", "typing", "presence", "kick", "call.invited", "call.ring", "call.accept",
                      "call.reject", "call.cancel", "call.hangup", "call.signal"}
MESSAGE_FIELDS = {"id", "conversation_id", "seq", "sender_id", "kind", "body", "client_msg_id", "created_at"}
# PROTOCOL.md, "Guarantees": the only ways the server may close a socket on a client's input.
CLOSE_TOO_MANY_BAD_FRAMES = 1008
CLOSE_TOO_BIG = 1009
MAX_BAD_FRAMES = 20
MAX_FRAME_BYTES = 64 * 1024


def shorten(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class Broken(AssertionError):
    """A rule of the contract that an answer broke; `rule` names it without the input (so that
    bench/fuzz.py can count distinct failures), the message says what was sent and seen."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def require(condition: bool, rule: str, message: str) -> None:
    if not condition:
        raise Broken(rule, message)


def check_http_answer(status: int, content_type: str, body: Any, what: str) -> None:
    """No 5xx for a client's input, and every error in the contract's shape."""
    what = shorten(what, 600)
    seen = f"{what} -> {status}: {shorten(body)}"
    require(status < 500, f"HTTP {status}", seen)
    if status < 400:
        return
    require(content_type == "application/json", f"HTTP {status} as {content_type}", seen)
    error = body.get("error") if isinstance(body, dict) else None
    require(isinstance(error, dict), "HTTP error without an error object", seen)
    assert isinstance(error, dict)
    require(set(error) <= {"code", "message", "details"}, "HTTP error with keys outside the contract", seen)
    code, message = error.get("code"), error.get("message")
    require(isinstance(code, str) and bool(SNAKE_CASE.match(code)), "HTTP error code not snake_case", seen)
    require(isinstance(message, str) and bool(message), "HTTP error without a message", seen)
    require(isinstance(error.get("details", {}), dict), "HTTP error details not an object", seen)
    expected = HTTP_STATUS_OF_CODE.get(str(code))
    require(expected is None or expected == status, f"HTTP {status} with code {code}", seen)
    if code == "validation_failed":
        details = error.get("details") or {}
        require(isinstance(details.get("field"), str) and isinstance(details.get("reason"), str),
                "HTTP 422 without details.field and details.reason", seen)


def check_message(message: Any, what: str) -> None:
    require(isinstance(message, dict) and MESSAGE_FIELDS <= set(message)
            and isinstance(message["id"], str) and isinstance(message["seq"], int),
            "not a message object", f"{what}: not a message object: {shorten(message)}")


def check_frame(frame: Any, what: str) -> None:
    """A server frame: an object with a known `type`; errors carry a contract code and a message."""
    require(isinstance(frame, dict) and isinstance(frame.get("type"), str), "frame without a type",
            f"{what}: not a frame: {shorten(frame)}")
    kind = frame["type"]
    require(kind in SERVER_FRAME_TYPES, "unknown frame type", f"{what}: unknown frame type: {shorten(frame)}")
    if kind == "error":
        require(frame.get("code") in WS_ERROR_CODES, f"error code {frame.get('code')!r} outside the contract",
                f"{what}: error code not in the contract: {shorten(frame)}")
        require(isinstance(frame.get("message"), str) and bool(frame["message"]), "error frame without a message",
                f"{what}: error without a message: {shorten(frame)}")
    elif kind in ("message", "message.updated", "sent"):
        check_message(frame.get("message"), what)
    elif kind == "sync.result":
        require(isinstance(frame.get("messages"), list) and isinstance(frame.get("more"), bool),
                "malformed sync.result", f"{what}: {shorten(frame)}")
        for message in frame["messages"]:
            check_message(message, what)
