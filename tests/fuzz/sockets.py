"""The WebSocket side of the fuzz: a fuzzing socket that may send anything, and bystanders.

Everything here runs on the served app's event loop (`ServedApp.run`). The fuzzing socket
reads every frame the server sends it and holds each to the contract; when the server closes
it, the close must be one the contract names for what was sent (1008 after 20 bad frames in
a row, each answered with an error frame; 1009 after a frame over 64 KiB), and the socket
is opened again so that the run goes on.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType

from ..ws_device import Closed, Device
from .contract import (BAD_FRAME_CODES, CLOSE_TOO_BIG, CLOSE_TOO_MANY_BAD_FRAMES, MAX_BAD_FRAMES, MAX_FRAME_BYTES,
                       Broken, check_frame, require, shorten)
from .strategies import Targets, WireFrame
from .world import World

TIMEOUT = 10.0  # seconds for a frame the server owes; a failure, never a pause
_ids = itertools.count(1)


def _canonical(value: Any) -> str | None:
    """A frame id as the server may echo it (a string or an integer), comparable across JSON."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return json.dumps(value)
    return None


def _id_of(frame: WireFrame) -> str | None:
    if isinstance(frame.data, bytes):
        return None
    try:
        parsed = json.loads(frame.data)
    except (ValueError, RecursionError):
        return None
    return _canonical(parsed.get("id")) if isinstance(parsed, dict) else None


@dataclass
class FuzzSocket:
    """The fuzzing user's socket, reopened after every close the contract allows."""

    http: ClientSession
    url: str
    token: str
    ws: ClientWebSocketResponse | None = None
    sent_ids: set[str] = field(default_factory=set)
    bad_answers: int = 0  # bad-frame errors received since this socket opened
    closes: dict[int, int] = field(default_factory=dict)  # close code -> how often
    replies: dict[str, int] = field(default_factory=dict)  # frame type (or error code) -> how often

    async def connect(self) -> None:
        self.ws = await self.http.ws_connect(self.url + "/ws", headers={"Authorization": f"Bearer {self.token}"})
        self.bad_answers = 0
        welcome = await self._receive("connecting")
        require(welcome is not None and welcome["type"] == "welcome", "no welcome", f"no welcome: {welcome}")

    async def _receive(self, what: str) -> dict[str, Any] | None:
        """The next frame, checked; None once the socket is closed."""
        assert self.ws is not None
        msg = await self.ws.receive(timeout=TIMEOUT)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        require(msg.type == WSMsgType.TEXT, f"server sent a {msg.type.name} frame",
                f"{what}: the server sent {msg.type.name}: {shorten(msg.data)}")
        frame = json.loads(msg.data)
        check_frame(frame, what)
        kind = frame["type"] if frame["type"] != "error" else f"error {frame['code']}"
        self.replies[kind] = self.replies.get(kind, 0) + 1
        echoed = frame.get("id")
        if echoed is not None and frame["type"] in ("error", "pong", "sent", "ok", "sync.result"):
            require(_canonical(echoed) in self.sent_ids, "reply with an id never sent",
                    f"{what}: a reply with an id never sent: {shorten(frame)}")
        if frame["type"] == "error" and frame["code"] in BAD_FRAME_CODES:
            self.bad_answers += 1
        return frame

    async def batch(self, frames: list[WireFrame]) -> list[dict[str, Any]]:
        """Send the frames, then a `ping`; every frame before its `pong` (or the close)."""
        if self.ws is None or self.ws.closed:
            await self.connect()  # a failed batch before this one left it closed
        assert self.ws is not None
        what = f"after {frames}"
        oversized = any(f.size > MAX_FRAME_BYTES for f in frames)
        bad_before = self.bad_answers
        barrier = f"barrier-{next(_ids)}"
        self.sent_ids.add(json.dumps(barrier))
        got: list[dict[str, Any]] = []
        try:
            for frame in frames:
                frame_id = _id_of(frame)
                if frame_id is not None:
                    self.sent_ids.add(frame_id)
                if isinstance(frame.data, bytes):
                    await self.ws.send_bytes(frame.data)
                else:
                    await self.ws.send_str(frame.data)
            await self.ws.send_json({"type": "ping", "id": barrier})
        except ConnectionResetError:
            pass  # closed while sending; the close is read below
        while True:
            try:
                frame_or_none = await self._receive(what)
            except TimeoutError:
                raise Broken("no pong", f"{what}: no pong within {TIMEOUT} s; frames: {shorten(got, 2000)}") from None
            if frame_or_none is None:
                await self._closed(what, oversized, self.bad_answers > bad_before, got)
                return got
            got.append(frame_or_none)
            if frame_or_none.get("id") == barrier and frame_or_none["type"] in ("pong", "error"):
                return got

    async def _closed(self, what: str, oversized: bool, answered_bad: bool, got: list[dict[str, Any]]) -> None:
        assert self.ws is not None
        code = self.ws.close_code
        self.closes[code or 0] = self.closes.get(code or 0, 0) + 1
        bad_answers = self.bad_answers
        await self.connect()  # first, so that the run goes on whatever the verdict
        if code == CLOSE_TOO_BIG:
            require(oversized, "closed with 1009 without a frame over 64 KiB",
                    f"{what}: closed with 1009 without a frame over 64 KiB; frames: {shorten(got, 2000)}")
        elif code == CLOSE_TOO_MANY_BAD_FRAMES:
            require(answered_bad and bad_answers >= MAX_BAD_FRAMES, "closed with 1008 before 20 bad frames",
                    f"{what}: closed with 1008 after {bad_answers} bad-frame errors; frames: {shorten(got, 2000)}")
        else:
            raise Broken(f"closed with {code}", f"{what}: closed with {code} (the contract allows 1008 after "
                         f"{MAX_BAD_FRAMES} bad frames and 1009 after a frame over 64 KiB); frames before: "
                         f"{shorten(got, 2000)}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def read_until(device: Device, done: Any, what: str) -> dict[str, Any]:
    """Frames of a bystander (or a device reading back) until `done(frame)`; each is checked,
    messages are acked."""
    while True:
        try:
            frame = await device.recv()
        except Closed as closed:
            raise Broken(f"a socket closed with {closed.code}", f"{what}: the socket closed with {closed.code}") \
                from None
        except AssertionError as silent:
            raise Broken("no answer", f"{what}: {silent}") from None
        check_frame(frame, what)
        if frame["type"] == "message":
            message = frame["message"]
            await device.send({"type": "ack", "conversation_id": message["conversation_id"], "seq": message["seq"]})
        if done(frame):
            return frame
        require(frame["type"] != "error", "an error where none was due", f"{what}: got {frame}")


async def open_device(http: ClientSession, url: str, token: str) -> Device:
    ws = await http.ws_connect(url + "/ws", headers={"Authorization": f"Bearer {token}"})
    device = Device(ws, {})
    device.timeout = TIMEOUT
    device.welcome = await device.expect("welcome")
    return device


async def talk(sender: Device, recipient: Device, recipient_id: str, what: str) -> None:
    """One message from a bystander to the other: `sent` to the sender, delivered to the other."""
    frame_id = f"by-{next(_ids)}"
    await sender.send({"type": "send", "id": frame_id, "to": recipient_id, "client_msg_id": str(uuid.uuid4()),
                       "kind": "text", "body": {"text": f"still here {frame_id}"}})
    answer = await read_until(sender, lambda f: f.get("id") == frame_id, f"{what}: bystander's send")
    require(answer["type"] == "sent", "a bystander's send failed", f"{what}: the bystander's send got {answer}")
    message_id = answer["message"]["id"]
    await read_until(recipient, lambda f: f["type"] == "message" and f["message"]["id"] == message_id,
                     f"{what}: delivery to the other bystander")


async def sync_everything(device: Device, what: str) -> int:
    """`sync` from nothing until `more` is false; how many messages came."""
    cursors: dict[str, int] = {}
    total = 0
    for _ in range(100):
        frame_id = f"sync-{next(_ids)}"
        await device.send({"type": "sync", "id": frame_id, "cursors": cursors, "limit": 1000})
        result = await read_until(device, lambda f: f.get("id") == frame_id, what)
        require(result["type"] == "sync.result", "sync failed", f"{what}: {shorten(result)}")
        for message in result["messages"]:
            cid = message["conversation_id"]
            cursors[cid] = max(cursors.get(cid, 0), message["seq"])
        total += len(result["messages"])
        if not result["more"]:
            return total
    raise Broken("sync never ended", f"{what}: sync never ended")


class Sockets:
    """Ann's fuzzing socket and the bystanders' devices, on the served app's loop."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.http: ClientSession | None = None
        self.fuzzer: FuzzSocket | None = None
        self.bob: Device | None = None
        self.cat: Device | None = None

    async def open(self) -> None:
        self.http = ClientSession()
        url, tokens = self.world.app.url, self.world.tokens
        self.fuzzer = FuzzSocket(self.http, url, tokens["ann"])
        await self.fuzzer.connect()
        self.bob = await open_device(self.http, url, tokens["bob"])
        self.cat = await open_device(self.http, url, tokens["cat"])

    async def reopen_bystanders(self) -> None:
        """New sockets for bob and cat (bench/fuzz.py goes on after a failure)."""
        assert self.http is not None
        for device in (self.bob, self.cat):
            if device is not None:
                await device.close()
        url, tokens = self.world.app.url, self.world.tokens
        self.bob = await open_device(self.http, url, tokens["bob"])
        self.cat = await open_device(self.http, url, tokens["cat"])

    async def sync_all(self, name: str) -> int:
        """A fresh device of the user `sync`s everything from nothing; how many messages came."""
        assert self.http is not None
        device = await open_device(self.http, self.world.app.url, self.world.tokens[name])
        try:
            return await sync_everything(device, f"{name}'s sync from nothing")
        finally:
            await device.close()

    async def close(self) -> None:
        for device in (self.bob, self.cat):
            if device is not None:
                await device.close()
        if self.fuzzer is not None:
            await self.fuzzer.close()
        if self.http is not None:
            await self.http.close()


def targets(world: World) -> Targets:
    """What ann's frames may point at; tokens: her own, bob's (never to be accepted), junk."""
    ids = world.ids
    return Targets(user_ids=ids["user_id"], conversation_ids=ids["cid"], group_ids=ids["group_id"],
                   message_ids=ids["message_id"], tokens=[world.tokens["ann"], world.tokens["bob"], "x.y.z"])


def shared_conversations(world: World) -> list[str]:
    """The conversations ann can write to: the ones her frames could harm for others."""
    return [c for c in world.ids["cid"] if world.users["ann"] in c or c.startswith("g:")]
