"""A push gateway stand-in: a real aiohttp server on a free loopback port that answers from a
script (`500`, `hang`, `200`...) and records every request's body and headers.

It runs on the test's own event loop (`Receiver`), or on a thread of its own for tests that
drive a `lucky serve` subprocess with blocking calls (`ThreadedReceiver`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

SECRET = "gateway secret"
HANG_S = 3600.0


@dataclass(frozen=True)
class Hit:
    body: bytes
    headers: dict[str, str]
    answer: str  # what the receiver did: "200", "500", "hang"

    @property
    def json(self) -> dict[str, Any]:
        value = orjson.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def signed(self) -> bool:
        expected = "sha256=" + hmac.new(SECRET.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("X-Lucky-Signature", ""), expected)


class Receiver:
    """Answers each request with the next step of `script`, then with `then` ("200")."""

    def __init__(self) -> None:
        self.script: deque[str] = deque()
        self.then = "200"
        self.hits: list[Hit] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    @property
    def taken(self) -> list[Hit]:
        """The requests answered 2xx."""
        return [h for h in self.hits if h.answer == "200"]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        answer = self.script.popleft() if self.script else self.then
        async with self._changed:
            self.hits.append(Hit(body, dict(request.headers), answer))
            self._changed.notify_all()
        if answer == "hang":
            await asyncio.sleep(HANG_S)
        return web.Response(status=int(answer) if answer != "hang" else 200)

    async def start(self) -> None:
        """Listen (again) on a free port, or on the port it had before a `stop`."""
        app = web.Application()
        app.router.add_post("/push", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_hits(self, count: int, timeout: float = 10.0) -> list[Hit]:
        """Wait until at least `count` requests arrived; all of them."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.hits) >= count), timeout)
        return list(self.hits)


class ThreadedReceiver:
    """A `Receiver` on an event loop of its own thread, for blocking (subprocess) tests."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.receiver = self._call(self._make())

    async def _make(self) -> Receiver:
        receiver = Receiver()
        await receiver.start()
        return receiver

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def wait_hits(self, count: int, timeout: float = 30.0) -> list[Hit]:
        hits: list[Hit] = self._call(self.receiver.wait_hits(count, timeout))
        return hits

    def answer(self, *script: str, then: str = "200") -> None:
        """From the next request on: answer `script` in turn, then always `then`."""

        async def change() -> None:
            self.receiver.script.extend(script)
            self.receiver.then = then

        self._call(change())

    def close(self) -> None:
        self._call(self.receiver.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
