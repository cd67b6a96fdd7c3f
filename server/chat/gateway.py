"""The WebSocket edge, `GET /ws`: authenticate, then read frames and call the chat service.

One reader loop per socket; writes go through `WsTransport`, which gathers the frames of one
turn of the event loop into one write (no task of its own, so an idle socket costs little),
and closes a device that falls `SEND_BUFFER_BYTES` behind (1013) rather than stall a fan-out:
it reconnects and `sync`s.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
import time
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import Histogram

from ..auth.tokens import AccessClaims
from ..calls.service import InviteRequest
from ..clock import Clock
from ..errors import LuckyError, forbidden, rate_limited, unauthorized
from ..ids import parse_id
from ..keys import CHAT, CORE, METRICS
from ..ratelimit import TokenBucket
from ..web.routing import RouteTable
from ..web.session import caller, client_ip
from .delivery import Session
from .frames import (Ack, Auth, BadFrame, CallFrame, CallInvite, CallSignal, ClientFrame, Edit, Ping, Read, Recall,
                     Send, Sync, Typing, error_frame, parse_frame, reply_frame, sent_frame)
from .model import Message
from .service import ChatService, SendRequest

log = logging.getLogger(__name__)
routes = RouteTable("chat")

MAX_BAD_FRAMES = 20
SEND_BUFFER_BYTES = 4 * 1024 * 1024  # unsent bytes a device may fall behind by before it is closed
NO_DRAIN = 1 << 62  # aiohttp's writer_limit: its own frames (pong, close) never wait for a drain
CLOSE_KICKED = 4001  # after a `kick` frame: signed out, disabled, token expired, or replaced by an admin
TYPING_EVERY_S = 2.0  # PROTOCOL.md: `typing` relayed at most once per 2 s per conversation and connection
TYPING_REMEMBERED = 64  # conversations a connection remembers typing to before it forgets stale ones
SOCKET_RETRY_S = 5  # Retry-After for an upgrade over a socket cap
_WS_CODES = {"invalid_request": "invalid_frame", "payload_too_large": "too_large"}


class WsTransport:
    """Writes frames without a task or an await per frame, several at a time.

    Frames sent in one turn of the event loop (a send batch's `sent` answers, its messages to
    one device, a group batch fanned out) are gathered and written in one `transport.write`
    at the end of the turn: one system call per socket per turn instead of one per frame,
    which is most of a fan-out's cost. The frames are text frames of RFC 6455 §5.2 from
    server to client (FIN, opcode 1, no mask), written next to aiohttp's own control frames
    (pong, close) whole, never inside them.

    Flow control is ours: a device whose unsent bytes pass `SEND_BUFFER_BYTES` reads too
    slowly to keep up and is closed (1013), never waited for, so one slow device cannot
    stall a fan-out; it reconnects and `sync`s.

    So is the heartbeat (`heartbeat`, from the chat sweep once a second): aiohttp's keeps
    two timers per socket, about 0.5 KB of an idle socket's cost (docs/benchmarks.md, W3).
    The reader loop sets `heard` on every frame it reads, pongs included.
    """

    __slots__ = ("_ws", "_transport", "_closing", "_pending", "_loop", "heard", "_silent_since", "_pinged_at")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self._ws = ws
        # uvloop's transports write like asyncio.WriteTransport without subclassing it.
        self._transport = cast("asyncio.WriteTransport | None", transport)
        self._closing = False
        # The frames of this turn, to be written at its end; None between turns (no list kept
        # per idle socket).
        self._pending: list[bytes] | None = None
        self._loop = asyncio.get_running_loop()
        self.heard = False  # a frame has arrived since the last heartbeat
        self._silent_since = self._loop.time()
        self._pinged_at = 0.0  # when the ping not answered yet was sent; 0: none

    def send(self, frame: bytes) -> None:
        if self._closing:
            return
        pending = self._pending
        if pending is None:
            # Checked once per turn, not per frame: the write buffer changes only when a turn's
            # frames are written (`_flush`), and a socket closed meanwhile drops them there.
            if self._ws.closed or self._transport is None:
                return
            if self._transport.get_write_buffer_size() > SEND_BUFFER_BYTES:
                self.close(WSCloseCode.TRY_AGAIN_LATER, "too slow: reconnect and sync")
                return
            pending = self._pending = []
            self._loop.call_soon(self._flush)
        length = len(frame)  # a fan-out's hot path: the usual header from a table, no call
        pending.append(_SHORT_HEADERS[length] if length < 126 else _text_frame_header(length))
        pending.append(frame)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        transport = self._transport
        if not pending or transport is None or transport.is_closing() or self._ws.closed:
            return  # the device is gone: what it missed is unacked, re-sent or synced on reconnect
        try:
            transport.write(b"".join(pending))
        except (ConnectionError, RuntimeError):
            self._closing = True  # the peer is gone; the reader loop ends the session

    def heartbeat(self, now: float, every_s: float) -> None:
        if self.heard:
            self.heard = False
            self._silent_since = now
            self._pinged_at = 0.0
        elif self._closing or self._transport is None or self._transport.is_closing():
            pass
        elif self._pinged_at:
            if now - self._pinged_at >= every_s / 2:
                # As aiohttp's heartbeat: the connection is dropped without a close frame (the
                # peer no longer answers), the reader loop ends and the session with it.
                self._closing = True
                self._transport.close()
        elif now - self._silent_since >= every_s:
            self._pinged_at = now
            self._flush()  # the ping goes after the frames already sent, never inside one
            try:
                self._transport.write(_PING)
            except (ConnectionError, RuntimeError):
                self._closing = True

    def kick(self, reason: str) -> None:
        if not self._closing:
            self.send(orjson.dumps({"type": "kick", "reason": reason}))
            self.close(CLOSE_KICKED, reason)

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already sent (the close frame follows them on the wire)."""
        if not self._closing:
            self._flush()
            self._closing = True
            task = asyncio.get_running_loop().create_task(self._close(code, reason))
            _closing_tasks.add(task)
            task.add_done_callback(_closing_tasks.discard)

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self._ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            pass


_PING = b"\x89\x00"  # an unmasked, final ping frame without payload (RFC 6455 §5.5.2)
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")
_SHORT_HEADERS = tuple(bytes((0x81, length)) for length in range(126))  # frames under 126 bytes


@functools.lru_cache(maxsize=4096)  # a fan-out writes one frame's header once per member
def _text_frame_header(length: int) -> bytes:
    """The header of an unmasked, final text frame of `length` bytes (RFC 6455 §5.2)."""
    if length < 126:
        return _SHORT_HEADERS[length]
    if length < 65536:
        return _LEN16.pack(0x81, 126, length)
    return _LEN64.pack(0x81, 127, length)


_closing_tasks: set[asyncio.Task[None]] = set()  # a task needs a reference until it ends


def _origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return True  # native apps and bots send no Origin; browsers always do
    if origin in allowed or "*" in allowed:
        return True
    return urlsplit(origin).netloc == request.host


class Connection:
    """The state of one socket's reader: session, frame and send budgets, bad-frame count,
    and when it last relayed `typing` to each conversation.

    Slotted; the frame and send budgets are made at the first frame that takes from them (a
    bucket made then is as full as one made at connect would be by then), and the typing dict
    once the socket has sent `typing`: an idle socket must stay cheap (docs/benchmarks.md, W3).
    """

    __slots__ = ("chat", "calls", "auth", "clock", "config", "session", "transport", "sends", "frames", "bad_frames",
                 "metrics", "typing_at")

    def __init__(self, request: web.Request, chat: ChatService, session: Session, transport: WsTransport) -> None:
        core = request.app[CORE]
        self.chat = chat
        self.calls = core.calls
        self.auth = core.auth
        self.clock = core.clock
        self.config = core.config.chat
        self.session = session
        self.transport = transport
        self.sends: TokenBucket | None = None
        self.frames: TokenBucket | None = None
        self.bad_frames = 0
        self.metrics = request.app[METRICS]
        self.typing_at: dict[str, float] | None = None

    async def handle(self, raw: str) -> None:
        # Every frame counts against the budget, a malformed one too. An over-budget frame is
        # still parsed, for the id its `rate_limited` answer carries (it is at most
        # chat.max_frame_bytes); what the budget spares is its work and its fan-out.
        now = self.clock.monotonic()
        frames = self.frames
        if frames is None:
            frames = self.frames = TokenBucket(self.config.frame_rate_per_s, self.config.frame_burst, now)
        within = frames.take(now)
        try:
            frame = parse_frame(raw)
        except BadFrame as bad:
            if within:
                self.reject(bad.frame_id, bad.error)
            else:
                self.limited(bad.frame_id, "Too many frames; this one was dropped. Slow down.")
            return
        if not within:
            self.limited(frame.id, "Too many frames; this one was dropped. Slow down.")
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

    def limited(self, frame_id: Any, message: str) -> None:
        """`error rate_limited`: the frame is dropped; not a bad frame, so the run goes on."""
        self.transport.send(error_frame(frame_id, "rate_limited", message))

    def _rate(self, frame_id: Any) -> bool:
        now = self.clock.monotonic()
        sends = self.sends
        if sends is None:
            sends = self.sends = TokenBucket(self.config.send_rate_per_s, self.config.send_burst, now)
        if sends.take(now):
            return True
        self.limited(frame_id, "Sending too fast; this frame was dropped. Slow down.")
        return False

    def _typing_due(self, conversation_id: str, now: float) -> bool:
        """Whether `typing` to this conversation may be relayed (once per TYPING_EVERY_S)."""
        seen = self.typing_at
        if seen is None:
            return True
        last = seen.get(conversation_id)
        return last is None or now - last >= TYPING_EVERY_S

    def _typed(self, conversation_id: str, now: float) -> None:
        seen = self.typing_at
        if seen is None:
            seen = self.typing_at = {}
        elif len(seen) >= TYPING_REMEMBERED:
            # Forget what no longer throttles anything; the frame budget bounds what is left
            # (at most the burst plus two seconds of frames).
            for cid in [cid for cid, at in seen.items() if now - at >= TYPING_EVERY_S]:
                del seen[cid]
        seen[conversation_id] = now

    async def renew(self, frame: Auth) -> None:
        """`auth`: the socket runs on a fresh token of its own user and device from now on."""
        claims = await self.auth.authenticate(frame.access_token)  # 401: invalid, expired, revoked
        session = self.session
        if claims.user_id != session.user_id or claims.device_id != session.device_id:
            raise unauthorized("That token is another user's or another device's; this socket keeps its own.")
        self.chat.sessions.expire_at(session, claims.expires_at_s, claims.family_id)
        self.transport.send(reply_frame("ok", frame.id))

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
            # Checked every time (from memory), relayed at most once per TYPING_EVERY_S: a
            # throttled repeat is dropped silently, a former member's is forbidden.
            now = self.clock.monotonic()
            due = self._typing_due(frame.conversation_id, now)
            await chat.typing(user_id, frame.conversation_id, relay=due)
            if due:
                self._typed(frame.conversation_id, now)
        elif isinstance(frame, Auth):
            await self.renew(frame)
        elif isinstance(frame, Recall):
            if self._rate(frame.id):
                await chat.recall(user_id, _message_id(frame.message_id))
                self.transport.send(reply_frame("ok", frame.id))
        elif isinstance(frame, Edit):
            if self._rate(frame.id):
                await chat.edit(user_id, _message_id(frame.message_id), frame.body)
                self.transport.send(reply_frame("ok", frame.id))
        elif isinstance(frame, CallFrame):
            await self.calls.act(self.session, str(frame.__struct_config__.tag), frame.call_id)
            self.transport.send(reply_frame("ok", frame.id))
        elif isinstance(frame, CallSignal):
            await self.calls.signal(self.session, frame.call_id, _required_id(frame.to, "to"), frame.data)
        elif isinstance(frame, CallInvite):
            await self.calls.invite(self.session, InviteRequest(
                frame.media, _optional_id(frame.to, "to"), _optional_id(frame.group_id, "group_id"), frame.call_id),
                lambda fields: self.transport.send(reply_frame("call.invited", frame.id, **fields)))

    async def send(self, frame: Send) -> None:
        request = SendRequest(
            client_msg_id=frame.client_msg_id, kind=frame.kind, body=frame.body,
            to=_optional_id(frame.to, "to"), group_id=_optional_id(frame.group_id, "group_id"),
            conversation_id=frame.conversation_id, reply_to=_optional_id(frame.reply_to, "reply_to"))
        reply = SentReply(frame.id, self.transport, self.metrics.send_seconds)
        await self.chat.submit(self.session.user_id, request, reply, self.session)


class SentReply:
    """Answers one `send` frame once its batch is stored: `sent` (durable), or an error frame.
    Called by the writer directly: no future, no callback scheduled per message."""

    __slots__ = ("frame_id", "transport", "histogram", "started")

    def __init__(self, frame_id: Any, transport: WsTransport, histogram: Histogram) -> None:
        self.frame_id = frame_id
        self.transport = transport
        self.histogram = histogram
        self.started = time.perf_counter()

    def stored(self, message: Message, is_new: bool) -> None:
        self.transport.send(sent_frame(self.frame_id, message.json()))
        self.histogram.observe(time.perf_counter() - self.started)

    def failed(self, error: BaseException) -> None:
        lucky = error if isinstance(error, LuckyError) else LuckyError(
            503, "unavailable", "The message could not be stored; send it again.")
        code = _WS_CODES.get(lucky.code, lucky.code)
        self.transport.send(error_frame(self.frame_id, code, lucky.message, lucky.details))


def _optional_id(value: Any, field: str) -> int | None:
    return None if value is None else _required_id(value, field)


def _required_id(value: Any, field: str) -> int:
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


# auth_middleware authenticates the upgrade before this handler runs; `query_token` lets it
# take `?token=` as well as the header (browsers cannot set headers on a WebSocket).
@routes.get("/ws", "The WebSocket: authenticate with a bearer token or ?token=", auth=True, query_token=True,
            query={"token": "an access token, for clients that cannot send headers"},
            responses={101: "switching protocols", 401: "missing, expired or revoked token"})
async def websocket(request: web.Request) -> web.StreamResponse:
    # One coroutine for the socket's whole life, its locals only what the reader loop needs:
    # its frame stays alive as long as the socket (docs/benchmarks.md, W3).
    core = request.app[CORE]
    config = core.config.chat
    if not _origin_allowed(request, core.config.server.allowed_origins):
        raise forbidden("This Origin may not open a WebSocket here; add it to server.allowed_origins.")
    claims = caller(request)
    user_id, device_id = claims.user_id, claims.device_id
    chat = request.app[CHAT]
    ip = client_ip(request)
    # Counted before the upgrade, so a socket over a cap costs no upgrade and no session.
    over = chat.sessions.open_sockets.reserve(user_id, ip, config.max_sockets_per_user, config.max_sockets_per_ip)
    if over is not None:
        holder = "account" if over == "user" else "address"
        raise rate_limited(SOCKET_RETRY_S, f"Too many open WebSockets for this {holder}; close one first.")
    try:
        # No aiohttp heartbeat (timers per socket): `WsTransport.heartbeat` pings instead, so
        # pings are answered here, and pongs are seen here, by hand.
        ws = web.WebSocketResponse(max_msg_size=config.max_frame_bytes, autoping=False, compress=False,
                                   writer_limit=NO_DRAIN)
        await ws.prepare(request)
        transport = WsTransport(ws, request.transport)
        try:  # the devices list's "last seen" and address: one write per connect, none per frame
            await core.devices.seen(user_id, device_id, ip)
        except Exception:  # a missed "last seen" must not cost the socket
            log.exception("noting that device %r of user %s connected failed", device_id, user_id)
        session = await chat.connect(user_id, device_id, claims.family_id, transport,
                                     functools.partial(_welcome, claims, config.heartbeat_s, core.clock))
        core.calls.device_connected(user_id, device_id)  # back within a call's grace
        # The token's expiry holds on the socket too: the chat sweep kicks it once passed (unless
        # an `auth` frame renewed it).
        chat.sessions.expire_at(session, claims.expires_at_s)
        connection = Connection(request, chat, session, transport)
        try:
            async for msg in ws:
                transport.heard = True
                if msg.type == WSMsgType.TEXT:
                    await connection.handle(msg.data)
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    connection.reject(None, LuckyError(400, "invalid_frame", "Frames are JSON text, not binary."))
                elif msg.type == WSMsgType.ERROR:
                    break
        except Exception:  # a bug must cost one socket, never the process
            log.exception("websocket of user %s failed", user_id)
        finally:
            await chat.disconnect(session)
            core.calls.device_left(user_id, device_id)  # its calls' grace starts
            if not ws.closed:
                await ws.close()
        return ws
    finally:
        chat.sessions.open_sockets.release(user_id, ip)


def _welcome(claims: AccessClaims, heartbeat_s: float, clock: Clock, session: Session) -> bytes:
    return orjson.dumps({
        "type": "welcome", "user_id": str(claims.user_id), "device_id": claims.device_id,
        "session_id": str(session.id), "heartbeat_s": heartbeat_s, "server_time": clock.now_ms(),
    })
