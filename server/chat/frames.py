"""Client frames, parsed in one pass into typed objects (PROTOCOL.md, "Client to server")."""

from __future__ import annotations

from typing import Any, Union

import msgspec
import orjson

from ..errors import LuckyError, field_of_error
from ..json_limits import MAX_SAFE_INT, check_json_limits

FrameId = Union[str, int, None]


class Frame(msgspec.Struct, tag_field="type", kw_only=True):
    id: FrameId = None


class Ping(Frame, tag="ping"):
    pass


class Send(Frame, tag="send"):
    client_msg_id: str
    kind: str
    body: Any
    to: str | int | None = None
    group_id: str | int | None = None
    conversation_id: str | None = None
    reply_to: str | int | None = None


class Ack(Frame, tag="ack"):
    conversation_id: str
    seq: int


class Read(Frame, tag="read"):
    conversation_id: str
    seq: int


class Sync(Frame, tag="sync"):
    cursors: dict[str, int] = {}
    limit: int = 200


class Typing(Frame, tag="typing"):
    conversation_id: str


class Recall(Frame, tag="recall"):
    message_id: str | int


class Edit(Frame, tag="edit"):
    message_id: str | int
    body: Any


class Auth(Frame, tag="auth"):
    """A fresh access token of the same user and device, before the socket's expires."""

    access_token: str


class CallInvite(Frame, tag="call.invite"):
    media: str
    to: str | int | None = None
    group_id: str | int | None = None
    call_id: str | None = None


class CallFrame(Frame):
    """`call.accept`, `call.reject`, `call.cancel`, `call.hangup`: the call's id only."""

    call_id: str


class CallAccept(CallFrame, tag="call.accept"):
    pass


class CallReject(CallFrame, tag="call.reject"):
    pass


class CallCancel(CallFrame, tag="call.cancel"):
    pass


class CallHangup(CallFrame, tag="call.hangup"):
    pass


class CallSignal(Frame, tag="call.signal"):
    """Opaque SDP or ICE (`data`, an object), bounded by the frame size."""

    call_id: str
    to: str | int
    data: dict[str, Any]


ClientFrame = Union[Ping, Send, Ack, Read, Sync, Typing, Recall, Edit, Auth, CallInvite, CallAccept, CallReject,
                    CallCancel, CallHangup, CallSignal]
_decoder: msgspec.json.Decoder[ClientFrame] = msgspec.json.Decoder(ClientFrame)
KNOWN_TYPES = {"ping", "send", "ack", "read", "sync", "typing", "recall", "edit", "auth", "call.invite",
               "call.accept", "call.reject", "call.cancel", "call.hangup", "call.signal"}


class BadFrame(Exception):
    def __init__(self, frame_id: FrameId, error: LuckyError) -> None:
        super().__init__(error.message)
        self.frame_id = frame_id
        self.error = error


def _frame_id_of(raw: str | bytes) -> FrameId:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)
                                      and -MAX_SAFE_INT <= value <= MAX_SAFE_INT):
            return value
    return None


def parse_frame(raw: str | bytes) -> ClientFrame:
    """A typed frame; BadFrame (with the frame's id when it had one) if it is not one."""
    try:
        check_json_limits(raw)  # deep nesting: invalid_frame; an int past ±(2^53-1): validation_failed
    except LuckyError as error:
        frame_id = None if error.status == 400 else _frame_id_of(raw)
        code = "invalid_frame" if error.status == 400 else error.code
        raise BadFrame(frame_id, LuckyError(error.status, code, error.message, error.details)) from None
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        # Typed decoding stops at the first value of the wrong type, before it has seen the
        # rest: `{"seq": "x",` would be a bad field. Malformed JSON is invalid_frame whatever
        # it holds, so check the whole frame (only on this error path).
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise BadFrame(None, LuckyError(400, "invalid_frame", "The frame is not valid JSON.")) from None
        frame_id = _frame_id_of(raw)
        message = str(exc)
        if "`$.type`" in message or "missing required field `type`" in message:
            raise BadFrame(frame_id, LuckyError(400, "invalid_frame",
                                                f"Unknown or missing frame type; known: {', '.join(sorted(KNOWN_TYPES))}.")) from None
        if message.startswith("Expected `object`") and "at `$." not in message:  # the frame itself
            raise BadFrame(frame_id, LuckyError(400, "invalid_frame", "A frame is a JSON object with a type.")) from None
        field, reason = field_of_error(message)
        raise BadFrame(frame_id, LuckyError(422, "validation_failed", f"{field}: {reason}",
                                            {"field": field, "reason": reason})) from None
    except msgspec.DecodeError:
        raise BadFrame(None, LuckyError(400, "invalid_frame", "The frame is not valid JSON.")) from None


def error_frame(frame_id: FrameId, code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if frame_id is not None:
        frame["id"] = frame_id
    if details:
        frame["details"] = details
    return orjson.dumps(frame)


def reply_frame(kind: str, frame_id: FrameId, **fields: Any) -> bytes:
    frame: dict[str, Any] = {"type": kind}
    if frame_id is not None:
        frame["id"] = frame_id
    frame.update(fields)
    return orjson.dumps(frame)


def sent_frame(frame_id: FrameId, message_json: bytes) -> bytes:
    """`sent`, around the message's already-serialized JSON."""
    head = b'{"type":"sent",'
    if frame_id is not None:
        head += b'"id":' + orjson.dumps(frame_id) + b","
    return head + b'"message":' + message_json + b"}"
