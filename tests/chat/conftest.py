"""Helpers for chat tests over real WebSockets: signed-in users with several devices, frames.

A `Device` is one real WebSocket to `/ws` (through the aiohttp test client), welcome read.
Negative checks ("this device got nothing") never sleep: `barrier()` sends a `ping` and
collects what arrives before its `pong`. Frames to one socket are written in order, and a
message is pushed to every recipient before its `sent` is answered, so once `sent` (or a
`receipt`, an `ok`) has come back, whatever the server meant to push is already queued ahead
of the `pong`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from lucky_server.app import build_app
from lucky_server.chat.service import ChatService
from lucky_server.clock import FakeClock
from lucky_server.keys import CHAT

from ..conftest import Api, MakeConfig
from ..ws_device import Device as BaseDevice

PASSWORD = "correct horse"
TIMEOUT = 5.0  # seconds to wait for a frame the server owes us; a failure, never a pause


class Device(BaseDevice):
    """A device of the chat tests: the next frame after a request must be its reply."""

    timeout = TIMEOUT

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def request(self, frame: dict[str, Any], reply: str) -> dict[str, Any]:
        """Send a frame with a fresh id; the next frame must be its reply of type `reply`."""
        frame_id = self.fresh_id("r")
        await self.send({**frame, "id": frame_id})
        answer = await self.expect(reply)
        assert answer.get("id") == frame_id, answer
        return answer

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes the socket: (close code, frames before the close)."""
        frames = []
        while True:
            try:
                msg = await self.ws.receive(timeout=timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"socket still open after {timeout} s; frames: {frames}") from None
            if msg.type == WSMsgType.TEXT:
                frames.append(msg.json())
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return self.ws.close_code, frames
            raise AssertionError(f"unexpected {msg}")

    async def send_text(self, to: str, text: str, cmid: str, **extra: Any) -> dict[str, Any]:
        """Send a text message to a user; the `sent` reply (the next frame on this socket)."""
        return await self.request({"type": "send", "to": to, "client_msg_id": cmid, "kind": "text",
                                   "body": {"text": text}, **extra}, "sent")


@dataclass
class User:
    """A registered user; `devices` are its open sockets, in the order they connected."""

    api: Api
    username: str
    devices: list[Device] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.api.user["id"])

    @property
    def token(self) -> str:
        assert self.api.token
        return self.api.token


Connect = Callable[..., Awaitable[Device]]


@dataclass
class Chat:
    """A running server with helpers to make users and connect their devices."""

    client: TestClient
    clock: FakeClock
    _sockets: list[ClientWebSocketResponse] = field(default_factory=list)

    @property
    def api(self) -> Api:
        return Api(self.client)

    @property
    def service(self) -> ChatService:
        return self.client.server.app[CHAT]

    async def user(self, username: str) -> User:
        """Register a user (signed in as its first device, `d0`)."""
        status, body = await self.api.call("POST", "/api/v1/auth/register", {
            "username": username, "password": PASSWORD, "device": {"id": "d0"}})
        assert status == 201, body
        return User(Api(self.client, body["access_token"], body["user"]), username)

    async def login(self, user: User, device_id: str) -> str:
        """An access token for another signed-in device of the user."""
        status, body = await self.api.call("POST", "/api/v1/auth/login", {
            "username": user.username, "password": PASSWORD, "device": {"id": device_id}})
        assert status == 200, body
        return str(body["access_token"])

    async def open(self, token: str | None = None, *, headers: dict[str, str] | None = None,
                   path: str = "/ws") -> ClientWebSocketResponse:
        """A raw WebSocket (welcome not read); raises WSServerHandshakeError when refused."""
        merged = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
        ws = await self.client.ws_connect(path, headers=merged, autoping=True)
        self._sockets.append(ws)
        return ws

    async def connect(self, user: User, device_id: str | None = None, *,
                      headers: dict[str, str] | None = None) -> Device:
        """Connect a device of the user (a new sign-in unless it is the first), welcome read."""
        token = user.token if device_id is None else await self.login(user, device_id)
        ws = await self.open(token, headers=headers)
        device = Device(ws, {})
        device.welcome = await device.expect("welcome")
        user.devices.append(device)
        return device

    async def close_all(self) -> None:
        for ws in self._sockets:
            if not ws.closed:
                await ws.close()


MakeChat = Callable[..., Awaitable[Chat]]


@pytest.fixture
async def make_chat(make_config: MakeConfig, aiohttp_client: Any, clock: FakeClock) -> AsyncIterator[MakeChat]:
    """A fresh server whose config has the given overrides (`chat={...}`, `server={...}`).

    `make_config` comes before `aiohttp_client` so that the server stops (storing what is
    queued) before its database is dropped: fixtures tear down in reverse order.
    """
    made: list[Chat] = []

    async def make(**sections: dict[str, Any]) -> Chat:
        client = await aiohttp_client(build_app(make_config(**sections), clock=clock))
        chat = Chat(client, clock)
        made.append(chat)
        return chat

    yield make
    for chat in made:
        await chat.close_all()


@pytest.fixture
async def chat(make_chat: MakeChat) -> Chat:
    return await make_chat()


def direct_id(a: User, b: User) -> str:
    low, high = sorted((a.id, b.id))
    return f"p:{low}:{high}"


def assert_error(frame: dict[str, Any], code: str, frame_id: Any = None, field: str | None = None) -> None:
    """An `error` frame with this code (and the failing field, and the frame's id if given)."""
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert isinstance(frame["message"], str) and frame["message"], frame
    if frame_id is not None:
        assert frame.get("id") == frame_id, frame
    if field is not None:
        assert frame["details"]["field"] == field, frame


def http_error(answer: tuple[int, Any], status: int, code: str, field: str | None = None) -> None:
    got, body = answer
    assert got == status, body
    assert body["error"]["code"] == code, body
    if field is not None:
        assert body["error"]["details"]["field"] == field, body
