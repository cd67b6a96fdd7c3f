"""Helpers for friends and groups tests: many signed-in users quickly, real WebSockets, groups.

Users are created through the auth service without a password (scrypt costs ~100 ms a hash
on these machines, and a 200-member group would spend most of its time hashing) and signed
in by starting a session the way a login does after checking the password. Everything after
that goes through HTTP and `/ws` like any client.

A `Device` is one real WebSocket to `/ws`, welcome read. Negative checks ("this device got
nothing") never sleep: `barrier()` sends a `ping` and collects what arrives before its
`pong`. Frames to one socket are written in order and a message is pushed to its recipients
before its sender hears `sent` (or an HTTP send answers), so what the server meant to push
is queued ahead of the `pong`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, TCPConnector
from aiohttp.test_utils import TestClient

from lucky_server.app import build_app
from lucky_server.auth.service import Device as LoginDevice
from lucky_server.clock import FakeClock
from lucky_server.core import Core
from lucky_server.keys import CORE
from lucky_server.storage.stores.users import UserStore

from ..conftest import Api, MakeConfig
from ..ws_device import Device as BaseDevice


class Device(BaseDevice):
    """A device of the friends and groups tests: replies are matched by id, and frames that
    arrive first wait in the backlog."""

    async def requests(self, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send frames with fresh ids, all at once; their replies, in the same order."""
        ids = [self.fresh_id("r") for _ in frames]
        for frame_id, frame in zip(ids, frames):
            await self.send({**frame, "id": frame_id})
        replies: dict[str, dict[str, Any]] = {}
        while len(replies) < len(ids):
            frame = await self._read(self.timeout)
            if frame.get("id") in ids:
                replies[frame["id"]] = frame
            else:
                self.backlog.append(frame)
        return [replies[frame_id] for frame_id in ids]

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a frame with a fresh id; its reply (frames before it wait in the backlog)."""
        return (await self.requests([frame]))[0]


@dataclass
class Person:
    """A signed-in user: an Api for HTTP calls and the devices it has connected."""

    api: Api
    username: str
    devices: list[Device] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.api.user["id"])

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        return await self.api.call(method, path, json)


@dataclass
class World:
    """A running server with helpers to make users, connect them, and build groups."""

    client: TestClient
    clock: FakeClock
    _sockets: list[ClientWebSocketResponse] = field(default_factory=list)

    @property
    def core(self) -> Core:
        return self.client.server.app[CORE]

    async def person(self, username: str, display_name: str | None = None) -> Person:
        record = await self.core.auth.create_user(username, None, display_name)
        tokens = await self.core.auth._start_session(record, LoginDevice(id="d0"))
        user = {"id": str(record.id), "username": record.username, "display_name": record.display_name}
        return Person(Api(self.client, tokens.access_token, user), record.username)

    async def people(self, *usernames: str) -> list[Person]:
        return list(await asyncio.gather(*(self.person(name) for name in usernames)))

    async def token(self, person: Person, device_id: str) -> str:
        """An access token for another signed-in device of the person."""
        user = await UserStore(self.core.db).by_id(int(person.id))
        assert user is not None
        tokens = await self.core.auth._start_session(user, LoginDevice(id=device_id))
        return tokens.access_token

    async def connect(self, person: Person, device_id: str | None = None) -> Device:
        """Connect a device of the person (a new sign-in unless it is the first), welcome read."""
        token = person.api.token if device_id is None else await self.token(person, device_id)
        ws = await self.client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"})
        self._sockets.append(ws)
        device = Device(ws, {})
        device.welcome = await device.expect("welcome")
        person.devices.append(device)
        return device

    async def group(self, owner: Person, members: list[Person], name: str = "team", **patch: Any) -> str:
        """Create a group (and apply `patch` to it); its id."""
        status, body = await owner.call("POST", "/api/v1/groups",
                                        {"name": name, "member_ids": [m.id for m in members]})
        assert status == 201, body
        gid = str(body["id"])
        if patch:
            status, body = await owner.call("PATCH", f"/api/v1/groups/{gid}", patch)
            assert status == 200, body
        return gid

    async def close_all(self) -> None:
        for ws in self._sockets:
            if not ws.closed:
                await ws.close()


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def make_world(make_config: MakeConfig, aiohttp_client: Any, clock: FakeClock) -> AsyncIterator[MakeWorld]:
    """A fresh server whose config has the given overrides (`chat={...}`).

    `make_config` comes before `aiohttp_client` so that the server stops (storing what is
    queued) before its database is dropped: fixtures tear down in reverse order.
    """
    made: list[World] = []

    async def make(**sections: dict[str, Any]) -> World:
        # No connection limit: a 200-member group keeps 200 WebSockets open (the default is 100).
        client = await aiohttp_client(build_app(make_config(**sections), clock=clock),
                                      connector=TCPConnector(limit=0))
        world = World(client, clock)
        made.append(world)
        return world

    yield make
    for world in made:
        await world.close_all()


@pytest.fixture
async def world(make_world: MakeWorld) -> World:
    return await make_world()


def gcid(gid: str) -> str:
    return f"g:{gid}"


def text(cmid: str, words: str, **body: Any) -> dict[str, Any]:
    """A text message body for HTTP `POST .../messages`."""
    return {"client_msg_id": cmid, "kind": "text", "body": {"text": words, **body}}


def error_code(answer: tuple[int, Any]) -> str | None:
    _, body = answer
    return body["error"]["code"] if isinstance(body, dict) and "error" in body else None
