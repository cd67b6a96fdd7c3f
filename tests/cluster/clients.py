"""Users of a cluster as a client app sees them: HTTP calls and WebSockets to any node.

A `Client` is one account: it signs in through whichever node, opens a device's socket on a
node of its choosing, and keeps what each device received, deduplicated by message id as a
client does (a message may legitimately arrive twice: an outbox redispatch, an ack timeout).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from ..chat.conftest import Device as ChatDevice
from ..cli.process import Served

PASSWORD = "cluster secret"
_names = itertools.count(1)


class Device(ChatDevice):
    timeout = 10.0  # a frame from another node crosses Redis: allow for a loaded CI machine

    async def request(self, frame: dict[str, Any], reply: str) -> dict[str, Any]:
        """Send a frame with a fresh id and return its reply; frames pushed meanwhile (another
        member's messages) are kept for `recv`, in the order they came."""
        frame_id = self.fresh_id("r")
        await self.send({**frame, "id": frame_id})
        aside: list[dict[str, Any]] = []
        while True:
            answer = await self.recv()
            if answer.get("id") == frame_id:
                assert answer["type"] == reply, answer
                self.backlog.extendleft(reversed(aside))
                return answer
            aside.append(answer)

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes: (the code of its close frame, frames before it).

        The close frame's own code: aiohttp's `close_code` becomes 1006 when the server has
        already dropped the connection by the time the client answers the close."""
        frames: list[dict[str, Any]] = []
        while True:
            try:
                msg = await self.ws.receive(timeout=timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"socket still open after {timeout} s; frames: {frames}") from None
            if msg.type == WSMsgType.TEXT:
                frames.append(msg.json())
            elif msg.type == WSMsgType.CLOSE:
                return int(msg.data), frames
            else:
                return self.ws.close_code, frames


async def call(http: aiohttp.ClientSession, node: Served, method: str, path: str, body: Any = None,
               token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, node.url + path, json=body, headers=headers) as resp:
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None)) if text else None


@dataclass
class Client:
    """One account and its devices; `received` is every message frame body seen, per device."""

    http: aiohttp.ClientSession
    username: str
    user_id: str
    token: str
    devices: list[Device] = field(default_factory=list)

    async def connect(self, node: Served, token: str | None = None) -> Device:
        ws = await self.http.ws_connect(node.ws_url, headers={"Authorization": f"Bearer {token or self.token}"})
        device = Device(ws, {})
        device.welcome = await device.expect("welcome")
        self.devices.append(device)
        return device

    async def sign_in(self, node: Served, device_id: str) -> str:
        """An access token of another signed-in device (`device_id`), through `node`."""
        status, body = await call(self.http, node, "POST", "/api/v1/auth/login", {
            "username": self.username, "password": PASSWORD, "device": {"id": device_id}})
        assert status == 200, body
        return str(body["access_token"])

    async def call(self, node: Served, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await call(self.http, node, method, path, body, self.token)


async def register(http: aiohttp.ClientSession, node: Served, prefix: str = "u") -> Client:
    username = f"{prefix}{next(_names)}"
    status, body = await call(http, node, "POST", "/api/v1/auth/register", {
        "username": username, "password": PASSWORD, "device": {"id": "d0"}})
    assert status == 201, body
    return Client(http, username, str(body["user"]["id"]), str(body["access_token"]))


async def register_many(http: aiohttp.ClientSession, nodes: list[Served], count: int, prefix: str = "u") -> list[Client]:
    """`count` accounts, registered through the nodes in turn (all at once: scrypt is slow)."""
    return list(await asyncio.gather(*(register(http, nodes[i % len(nodes)], prefix) for i in range(count))))


def direct_id(a: Client, b: Client) -> str:
    low, high = sorted((a.user_id, b.user_id))  # as strings, as the server orders them
    return f"p:{low}:{high}"


@dataclass
class Inbox:
    """What one device received of one conversation: every message frame, in arrival order."""

    frames: list[dict[str, Any]] = field(default_factory=list)

    def add(self, message: dict[str, Any]) -> None:
        self.frames.append(message)

    @property
    def ids(self) -> list[str]:
        return [str(m["id"]) for m in self.frames]

    def unique(self) -> dict[str, dict[str, Any]]:
        """By message id, as a client stores them (a repeat of an id is one message)."""
        return {str(m["id"]): m for m in self.frames}


async def read_messages(device: Device, conversation_id: str, count: int, inbox: Inbox | None = None,
                        timeout: float = 20, after: int = 0, own: Collection[int] = ()) -> Inbox:
    """Read until `count` distinct messages of the conversation arrived; other frames are skipped.

    Acks as a client must, cumulatively: up to the last seq it holds with none missing before
    it (`after`: the seq it had everything up to already; `own`: the seqs of what it sent, which
    are not pushed back to it), so that a gap is pushed again after `chat.ack_timeout_s` rather
    than acked away."""
    inbox = inbox if inbox is not None else Inbox()
    held: set[int] = set(own)
    acked = after

    async def go() -> None:
        nonlocal acked
        while len(inbox.unique()) < count:
            frame = await device.recv(timeout)
            if frame["type"] != "message" or frame["message"]["conversation_id"] != conversation_id:
                continue
            held.add(int(frame["message"]["seq"]))
            if frame["message"]["kind"] != "text":  # a group's `system` notes: held, not counted
                continue
            inbox.add(frame["message"])
            if acked + 1 in held:
                while acked + 1 in held:
                    acked += 1
                await device.send({"type": "ack", "conversation_id": conversation_id, "seq": acked})

    try:
        await asyncio.wait_for(go(), timeout)
    except (asyncio.TimeoutError, AssertionError):
        raise AssertionError(f"{len(inbox.unique())} of {count} messages of {conversation_id} arrived; "
                             f"seqs {sorted(m['seq'] for m in inbox.frames)}") from None
    return inbox


async def sync_all(device: Device, cursors: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Every message `sync` gives from these cursors, asking again while `more`."""
    cursors = dict(cursors or {})
    found: list[dict[str, Any]] = []
    while True:
        answer = await device.request({"type": "sync", "cursors": cursors, "limit": 1000}, "sync.result")
        for message in answer["messages"]:
            found.append(message)
            cursors[message["conversation_id"]] = max(cursors.get(message["conversation_id"], 0), message["seq"])
        if not answer["more"]:
            return found


async def history(client: Client, node: Served, conversation_id: str) -> list[dict[str, Any]]:
    """Every message of the conversation through HTTP history, oldest first."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        status, body = await client.call(node, "GET", f"/api/v1/conversations/{conversation_id}/messages"
                                                      f"?after_seq={after}&limit=100")
        assert status == 200, body
        page = body["items"]
        found.extend(page)
        if not body["has_more"] or not page:
            return found
        after = page[-1]["seq"]


async def meet(conversation_id: str, watcher: Device, others: dict[str, Device],
               rounds: int = 8) -> list[dict[str, Any]]:
    """Until the watcher's node knows where every other member is connected.

    Each other device sends `typing` until the watcher receives it. A node queues a user's
    presence before it reads that socket's first frame, publishes it no later than the typing
    that frame causes, and one subscriber gets what is published in order, so the watcher's
    node has taken in that presence by the time the typing reaches it: a message sent next is
    routed there. (`typing` is relayed once per 2 s
    per connection, hence the rounds of 2.1 s; the first usually does.) The typing frames the
    watcher got, one per other member."""
    missing = dict(others)  # user id -> device
    got: list[dict[str, Any]] = []
    for _ in range(rounds):
        for device in missing.values():
            await device.send({"type": "typing", "conversation_id": conversation_id})
        try:
            async with asyncio.timeout(2.1):
                while missing:
                    frame = await watcher.recv(timeout=2.1)
                    if frame["type"] == "typing" and frame["conversation_id"] == conversation_id \
                            and missing.pop(frame["user_id"], None) is not None:
                        got.append(frame)
        except (TimeoutError, AssertionError):
            pass
        if not missing:
            return got
    raise AssertionError(f"typing from {sorted(missing)} never reached the watcher's node")


def seqs(messages: Iterable[dict[str, Any]]) -> list[int]:
    return [int(m["seq"]) for m in messages]
