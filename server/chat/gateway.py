"""The WebSocket edge, `GET /ws`: authenticate, then read frames and call the chat service.

One reader loop per socket; writes go through `WsTransport`, a bounded queue drained by a
task that exists only while there is something to write, so an idle socket costs little and
a slow one never stalls a fan-out: when its queue is full it is closed (1013) and will `sync`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from ..errors import LuckyError, forbidden
from ..ids import parse_id
from ..keys import CHAT, CORE, METRICS
from ..ratelimit import TokenBucket
from ..web.routing import RouteTable
from ..web.session import bearer_token
from .delivery import Session
from .frames import (Ack, BadFrame, ClientFrame, Edit, Ping, Read, Recall, Send, Sync, Typing, error_frame,
                     parse_frame, reply_frame, sent_frame)
from .service import ChatService, SendRequest

log = logging.getLogger(__name__)
routes = RouteTable("chat")

MAX_BAD_FRAMES = 20
SEND_QUEUE_FRAMES = 4096
CLOSE_KICKED = 4001  # after a `kick` frame: signed out, disabled, or replaced by an admin
_WS_CODES = {"invalid_request": "invalid_frame", "payload_too_large": "too_large"}


class WsTransport:
    __slots__ = ("_ws", "_queue", "_task", "_closing")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._queue: collections.deque[bytes] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closing: tuple[int, str] | None = None

    def send(self, frame: bytes) -> None:
        if self._closing is not None or self._ws.closed:
            return
        if len(self._queue) >= SEND_QUEUE_FRAMES:
            self._queue.clear()
            self.close(WSCloseCode.TRY_AGAIN_LATER, "too slow: reconnect and sync")
            return
        self._queue.append(frame)
        self._wake()

    def kick(self, reason: str) -> None:
        if self._closing is None:
            self._queue.append(orjson.dumps({"type": "kick", "reason": reason}))
            self.close(CLOSE_KICKED, reason)

    def close(self, code: int, reason: str) -> None:
        """Close once the queued frames are written."""
        if self._closing is None:
            self._closing = (code, reason)
            self._wake()

    def _wake(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        ws = self._ws
        try:
            while self._queue:
                frame = self._queue.popleft()
                await ws.send_frame(frame, WSMsgType.TEXT)
            if self._closing is not None:
                code, reason = self._closing
                await ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            self._queue.clear()
        finally:
            self._task = None
            if self._queue and self._closing is None and not ws.closed:
                self._wake()


def _origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # native apps and bots send no Origin; browsers always do
    if origin in allowed or "*" in allowed:
        return True
    return urlsplit(origin).netloc == request.host


class Connection:
    """The state of one socket's reader: its session, rate bucket and bad-frame count."""

    def __init__(self, request: web.Request, chat: ChatService, session: Session,
                 transport: WsTransport, bucket: TokenBucket) -> None:
        self.request = request
        self.chat = chat
        self.session = session
        self.transport = transport
        self.bucket = bucket
        self.bad_frames = 0
        self.metrics = request.app[METRICS]

    async def handle(self, raw: str) -> None:
        try:
            frame = parse_frame(raw)
        except BadFrame as bad:
            self.reject(bad.frame_id, bad.error)
            return
        try:
            await self.dispatch(frame)
            self.bad_frames = 0
        except LuckyError as error:
            self.reject(frame.id, error)

    def reject(self, frame_id: Any, error: LuckyError) -> None:
        code = _WS_CODES.get(error.code, error.code)
        self.transport.send(error_frame(frame_id, code, error.message, error.details))
        if code in ("invalid_frame", "validation_failed"):
            self.bad_frames += 1
            if self.bad_frames >= MAX_BAD_FRAMES:
                self.transport.close(WSCloseCode.POLICY_VIOLATION, "too many bad frames")

    def _rate(self, frame_id: Any) -> bool:
        if self.bucket.take(time.monotonic()):
            return True
        self.transport.send(error_frame(frame_id, "rate_limited",
                                        "Sending too fast; this frame was dropped. Slow down."))
        return False

    async def dispatch(self, frame: ClientFrame) -> None:
        chat, user_id = self.chat, self.session.user_id
        if isinstance(frame, Send):
            if self._rate(frame.id):
                await self.send(frame)
        elif isinstance(frame, Ack):
            chat.ack(self.session, frame.conversation_id, frame.seq)
        elif isinstance(frame, Ping):
            self.transport.send(reply_frame("pong", frame.id))
        elif isinstance(frame, Sync):
            messages, more = await chat.sync(user_id, frame.cursors, frame.limit)
            body = b",".join(m.json() for m in messages)
            head = b'{"type":"sync.result",' + (b'"id":' + orjson.dumps(frame.id) + b"," if frame.id is not None else b"")
            self.transport.send(head + b'"messages":[' + body + b'],"more":' + (b"true" if more else b"false") + b"}")
        elif isinstance(frame, Read):
            await chat.read(user_id, frame.conversation_id, frame.seq)
        elif isinstance(frame, Typing):
            await chat.typing(user_id, frame.conversation_id)
        elif isinstance(frame, Recall):
            if self._rate(frame.id):
                await chat.recall(user_id, _message_id(frame.message_id))
                self.transport.send(reply_frame("ok", frame.id))
        elif isinstance(frame, Edit):
            if self._rate(frame.id):
                await chat.edit(user_id, _message_id(frame.message_id), frame.body)
                self.transport.send(reply_frame("ok", frame.id))

    async def send(self, frame: Send) -> None:
        started = time.perf_counter()
        request = SendRequest(
            client_msg_id=frame.client_msg_id, kind=frame.kind, body=frame.body,
            to=_optional_id(frame.to, "to"), group_id=_optional_id(frame.group_id, "group_id"),
            conversation_id=frame.conversation_id, reply_to=_optional_id(frame.reply_to, "reply_to"))
        future = await self.chat.submit(self.session.user_id, request, self.session)
        frame_id, transport, histogram = frame.id, self.transport, self.metrics.send_seconds

        def answer(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                return
            error = done.exception()
            if error is not None:
                lucky = error if isinstance(error, LuckyError) else LuckyError(
                    503, "unavailable", "The message could not be stored; send it again.")
                transport.send(error_frame(frame_id, lucky.code, lucky.message))
                return
            message, _ = done.result()
            transport.send(sent_frame(frame_id, message.json()))
            histogram.observe(time.perf_counter() - started)

        future.add_done_callback(answer)


def _optional_id(value: Any, field: str) -> int | None:
    if value is None:
        return None
    parsed = parse_id(value)
    if parsed is None:
        raise LuckyError(422, "validation_failed", f"{field}: an id (a decimal string)",
                         {"field": field, "reason": "an id (a decimal string)"})
    return parsed


def _message_id(value: Any) -> int:
    parsed = parse_id(value)
    if parsed is None:
        raise LuckyError(404, "not_found", "No such message.")
    return parsed


@routes.get("/ws", "The WebSocket: authenticate with a bearer token or ?token=", auth=True,
            query={"token": "an access token, for clients that cannot send headers"},
            responses={101: "switching protocols", 401: "missing, expired or revoked token"})
async def websocket(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE]
    config = core.config.chat
    if not _origin_allowed(request, core.config.server.allowed_origins):
        raise forbidden("This Origin may not open a WebSocket here; add it to server.allowed_origins.")
    claims = await core.auth.authenticate(bearer_token(request) or request.query.get("token"))
    ws = web.WebSocketResponse(heartbeat=config.heartbeat_s, max_msg_size=config.max_frame_bytes,
                               autoping=True, compress=False)
    await ws.prepare(request)
    chat = request.app[CHAT]
    transport = WsTransport(ws)

    def welcome(session: Session) -> bytes:
        return orjson.dumps({
            "type": "welcome", "user_id": str(claims.user_id), "device_id": claims.device_id,
            "session_id": str(session.id), "heartbeat_s": config.heartbeat_s, "server_time": core.clock.now_ms(),
        })

    session = await chat.connect(claims.user_id, claims.device_id, claims.family_id, transport, welcome)
    connection = Connection(request, chat, session, transport,
                            TokenBucket(config.send_rate_per_s, config.send_burst, time.monotonic()))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await connection.handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                connection.reject(None, LuckyError(400, "invalid_frame", "Frames are JSON text, not binary."))
            elif msg.type == WSMsgType.ERROR:
                break
    except Exception:  # a bug must cost one socket, never the process
        log.exception("websocket of user %s failed", claims.user_id)
    finally:
        await chat.disconnect(session)
        if not ws.closed:
            await ws.close()
    return ws
