"""One real WebSocket client to `/ws`, shared by the chat and the friends-and-groups tests.

Negative checks ("this device got nothing") never sleep: `barrier()` sends a `ping` and
collects what arrives before its `pong`. Frames to one socket are written in order, so
whatever the server meant to push before answering is queued ahead of the `pong`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

TIMEOUT = 10.0  # seconds to wait for a frame the server owes us; a failure, never a pause


class Closed(AssertionError):
    """The socket closed while a frame was expected."""

    def __init__(self, code: int | None, frames: list[dict[str, Any]]) -> None:
        super().__init__(f"socket closed with {code}; frames before: {frames}")
        self.code = code


class Device:
    """One connected device: a real WebSocket, its welcome, and frame helpers.

    Frames put aside while waiting for a particular reply (`backlog`) are handed out by
    `recv` first, in the order they arrived.
    """

    _ids = itertools.count(1)
    timeout = TIMEOUT

    def __init__(self, ws: ClientWebSocketResponse, welcome: dict[str, Any]) -> None:
        self.ws = ws
        self.welcome = welcome
        self.backlog: collections.deque[dict[str, Any]] = collections.deque()

    @classmethod
    def fresh_id(cls, prefix: str) -> str:
        return f"{prefix}{next(cls._ids)}"

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_json(frame)

    async def _read(self, timeout: float) -> dict[str, Any]:
        try:
            msg = await self.ws.receive(timeout=timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no frame within {timeout} s") from None
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise Closed(self.ws.close_code, [])
        assert msg.type == WSMsgType.TEXT, msg
        frame = msg.json()
        assert isinstance(frame, dict) and "type" in frame, frame
        return frame

    async def recv(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame; fails on a close or a timeout."""
        if self.backlog:
            return self.backlog.popleft()
        return await self._read(self.timeout if timeout is None else timeout)

    async def expect(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """The next frame, which must be of this type."""
        frame = await self.recv(timeout)
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    async def barrier(self) -> list[dict[str, Any]]:
        """Every frame that arrives before the pong to a fresh ping."""
        frame_id = self.fresh_id("b")
        await self.send({"type": "ping", "id": frame_id})
        before = []
        while True:
            frame = await self.recv()
            if frame == {"type": "pong", "id": frame_id}:
                return before
            before.append(frame)

    async def nothing_pending(self) -> None:
        """Nothing reached this device that it has not read."""
        assert await self.barrier() == []

    async def close(self) -> None:
        await self.ws.close()
