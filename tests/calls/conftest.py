"""Helpers for call tests over real WebSockets, on the friends-and-groups test world.

Users sign in without scrypt (tests/social/conftest.py); each device is a real socket to
`/ws` under a named device id (`a1`, `b2`), so the test reads like the devices it drives.
Deadlines run on the test's `FakeClock`: a test advances it and runs the call sweep itself,
rather than waiting for the server's once-a-second sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lucky_server.calls.service import CallService

from ..social.conftest import Device, Person, World, make_world, world  # noqa: F401 (fixtures)

SFU = "https://sfu.example.org/rtc/v1"


def calls_of(world: World) -> CallService:
    return world.core.calls


async def devices(world: World, person: Person, *names: str) -> list[Device]:
    """Connect these devices of the person (each a new sign-in under that device id)."""
    return [await world.connect(person, name) for name in names]


async def ok(device: Device, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a frame; its reply must be `ok`."""
    reply = await device.request(frame)
    assert reply["type"] == "ok", reply
    return reply


async def refused(device: Device, frame: dict[str, Any], code: str) -> dict[str, Any]:
    reply = await device.request(frame)
    assert reply["type"] == "error" and reply["code"] == code, reply
    return reply


async def invite(device: Device, **fields: Any) -> str:
    """`call.invite`; the call id from the `call.invited` reply."""
    reply = await device.request({"type": "call.invite", "media": "audio", **fields})
    assert reply["type"] == "call.invited", reply
    return str(reply["call_id"])


async def system_message(device: Device, event: str) -> dict[str, Any]:
    """The next frame: the call's `system` message, pushed like any message."""
    frame = await device.expect("message")
    message = frame["message"]
    assert message["kind"] == "system" and message["body"]["event"] == event, message
    return dict(message)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for the server to get somewhere a socket cannot tell (a closed socket's end)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "the server never got there"
        await asyncio.sleep(0.01)
