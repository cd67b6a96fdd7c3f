"""Clients of the server under load: endpoints (accounts on Lucky, query ids on the relay) and sockets."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import orjson

PASSWORD = "bench-password-1"


class BenchError(Exception):
    """The benchmark could not run (server unreachable, registration refused, ...)."""


@dataclass(frozen=True)
class Endpoint:
    """One client: where its WebSocket connects (credentials included) and its user id.

    `token` is the access token on Lucky (None on the relay), for HTTP calls as that user.
    """

    ws_url: str
    user_id: str
    token: str | None = None


def install_event_loop() -> None:
    """uvloop when installed, as `lucky serve` does, so the client is not the slow side."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def raise_open_files(wanted: int) -> int:
    """Raise this process's open-file limit toward `wanted` (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def ws_base(base_url: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def relay_endpoints(base_url: str, count: int, prefix: str = "u", groups: Sequence[str] = ()) -> list[Endpoint]:
    """Endpoints of the bare relay: no account, the user id is given in the query, and so are
    the groups the user belongs to (the relay learns its groups from its members' sockets)."""
    base = ws_base(base_url)
    joined = "".join(f"&group={quote(g)}" for g in groups)
    return [Endpoint(f"{base}/ws?user={prefix}{i}{joined}", f"{prefix}{i}") for i in range(count)]


def new_session(connections: int = 0) -> aiohttp.ClientSession:
    # limit=0: a WebSocket holds its connection for its whole life, so the default pool limit
    # of 100 would make the 101st socket wait forever.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, force_close=False),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def _bounded(items: Iterable[Awaitable[Any]], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Awaitable[Any]) -> Any:
        async with gate:
            return await item

    return list(await asyncio.gather(*(one(i) for i in items)))


async def _auth_call(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        async with session.post(url, json=body) as resp:
            status, text = resp.status, await resp.text()
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise BenchError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    if status == 429:
        raise BenchError(f"{url} answered 429 (rate limited): run the server under benchmark with "
                         "LUCKY_AUTH__IP_RATE_PER_MIN=0")
    if status not in (200, 201):
        raise BenchError(f"{url} answered {status}: {text[:200]}")
    data: dict[str, Any] = orjson.loads(text)
    return data


def _endpoint(ws_base_url: str, auth: dict[str, Any]) -> Endpoint:
    token = str(auth["access_token"])
    return Endpoint(f"{ws_base_url}/ws?token={quote(token)}", str(auth["user"]["id"]), token)


async def register_users(session: aiohttp.ClientSession, base_url: str, usernames: Sequence[str],
                         password: str = PASSWORD, concurrency: int = 8) -> list[Endpoint]:
    """Register each username over HTTP (scrypt: ~50 ms of server CPU each); their endpoints."""
    url, base = base_url.rstrip("/") + "/api/v1/auth/register", ws_base(base_url)

    async def one(name: str) -> Endpoint:
        data = await _auth_call(session, url, {"username": name, "password": password})
        return _endpoint(base, data)

    return await _bounded((one(n) for n in usernames), concurrency)


async def login_users(session: aiohttp.ClientSession, base_url: str, usernames: Sequence[str],
                      password: str = PASSWORD, concurrency: int = 32,
                      progress: Callable[[int], None] | None = None) -> list[Endpoint]:
    """Log each username in over HTTP: one session, one access token per endpoint."""
    url, base = base_url.rstrip("/") + "/api/v1/auth/login", ws_base(base_url)

    async def one(name: str) -> Endpoint:
        data = await _auth_call(session, url, {"username": name, "password": password})
        if progress is not None:
            progress(1)
        return _endpoint(base, data)

    return await _bounded((one(n) for n in usernames), concurrency)


def spread(endpoints: Sequence[Endpoint], base_urls: Sequence[str]) -> list[Endpoint]:
    """The same endpoints with user i's socket on `base_urls[i % n]`: round-robin by user.

    Consecutive users land on different nodes, so W1's pairs (0, 1), (2, 3), ... are split
    across two nodes and every message crosses the bus (the worst case), and a W2 group's
    members are spread evenly. The token and user stay as they are: the nodes share one database.
    """
    if not base_urls:
        raise ValueError("spread needs at least one base URL")
    bases = [ws_base(u) for u in base_urls]
    moved = []
    for i, endpoint in enumerate(endpoints):
        parts = urlsplit(endpoint.ws_url)
        target = urlsplit(bases[i % len(bases)])
        url = urlunsplit((target.scheme, target.netloc, target.path + "/ws", parts.query, ""))
        moved.append(Endpoint(url, endpoint.user_id, endpoint.token))
    return moved


def http_base(endpoint: Endpoint) -> str:
    """The server's HTTP base URL, from an endpoint's WebSocket URL (`.../ws?...`)."""
    parts = urlsplit(endpoint.ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, parts.path.removesuffix("/ws"), "", ""))


class Socket:
    """A connected client: its WebSocket and the welcome it got."""

    def __init__(self, endpoint: Endpoint, ws: aiohttp.ClientWebSocketResponse, welcome: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.ws = ws
        self.welcome = welcome


async def connect(session: aiohttp.ClientSession, endpoint: Endpoint, timeout: float = 30) -> Socket:
    """Open the endpoint's WebSocket and wait for `welcome`."""
    try:
        ws = await session.ws_connect(endpoint.ws_url, autoping=True, max_msg_size=0,
                                      timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except aiohttp.WSServerHandshakeError as exc:
        raise BenchError(f"WebSocket refused for user {endpoint.user_id}: HTTP {exc.status}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise BenchError(f"cannot open a WebSocket to {endpoint.ws_url.split('?')[0]}: {exc}") from None
    msg = await asyncio.wait_for(ws.receive(), timeout)
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise BenchError(f"expected a welcome frame, got {msg.type.name}")
    welcome = orjson.loads(msg.data)
    if welcome.get("type") != "welcome":
        raise BenchError(f"expected a welcome frame, got {msg.data[:200]}")
    return Socket(endpoint, ws, welcome)


async def connect_all(session: aiohttp.ClientSession, endpoints: Sequence[Endpoint],
                      concurrency: int = 64, progress: Callable[[int], None] | None = None) -> list[Socket]:
    async def one(endpoint: Endpoint) -> Socket:
        sock = await connect(session, endpoint)
        if progress is not None:
            progress(1)
        return sock

    return await _bounded((one(e) for e in endpoints), concurrency)


async def close_all(sockets: Iterable[Socket]) -> None:
    await asyncio.gather(*(s.ws.close() for s in sockets), return_exceptions=True)
