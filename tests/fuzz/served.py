"""HTTP calls to a Lucky at a URL (`Client`), and `build_app(config)` served in a thread (`ServedApp`).

Schemathesis and Hypothesis drive their requests synchronously, so the server cannot live on
the test's own event loop as `aiohttp_client` does. `ServedApp` runs it, like `lucky serve`,
behind an `AppRunner` on a socket bound to 127.0.0.1 port 0 (tests in parallel never collide),
on an event loop in a thread of its own, and stops it (pending writes stored, services closed)
when the test ends. bench/fuzz.py uses `Client` against a `lucky serve` subprocess.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import requests
from aiohttp import web

from lucky_server.app import build_app
from lucky_server.clock import Clock

T = TypeVar("T")
PASSWORD = "correct horse"
START_TIMEOUT = 60.0


class Client:
    """Requests to one server as a signed-in user or as nobody; WebSocket work on a loop."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self._own_loop = loop is None
        self._loop = loop or asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        if self._own_loop:
            self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-client", daemon=True)
            self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = START_TIMEOUT) -> T:
        """Run a coroutine on this client's loop (the server's, for a ServedApp) and wait for it."""
        async def wrapped() -> T:
            return await coro
        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout)

    def call(self, method: str, path: str, json: Any = None, token: str | None = None,
             **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, self.url + path, json=json, headers=headers, timeout=30, **kwargs)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.status_code, response.json()
        return response.status_code, response.text

    def send(self, method: str, path_and_query: str, data: bytes | None = None, content_type: str | None = None,
             token: str | None = None) -> tuple[int, str, Any]:
        """A raw request (path and query already encoded): (status, content type, JSON or bytes)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = self.http.request(method, self.url + path_and_query, data=data, headers=headers, timeout=30)
        kind = response.headers.get("Content-Type", "").split(";")[0].strip()
        if kind == "application/json":
            try:
                return response.status_code, kind, response.json()
            except ValueError:
                pass
        return response.status_code, kind, response.content

    def register(self, username: str) -> tuple[str, str]:
        """A new account, signed in: (user id, access token)."""
        status, body = self.call("POST", "/api/v1/auth/register", {"username": username, "password": PASSWORD})
        assert status == 201, body
        return str(body["user"]["id"]), str(body["access_token"])

    def close(self) -> None:
        self.http.close()
        if self._own_loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=30)
            self._loop.close()


class ServedApp(Client):
    """A running server on a free loopback port; its loop also runs the tests' WebSocket clients."""

    def __init__(self, make_config: Callable[..., Any], clock: Clock | None = None, **sections: dict[str, Any]) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        port = int(self._sock.getsockname()[1])
        config = make_config(**{**sections, "server": {**sections.get("server", {}), "host": "127.0.0.1",
                                                        "port": port}})
        loop = asyncio.new_event_loop()
        self._server_thread = threading.Thread(target=loop.run_forever, name="served-app", daemon=True)
        self._server_thread.start()
        super().__init__(f"http://127.0.0.1:{port}", loop)
        self._runner = web.AppRunner(build_app(config, clock=clock), access_log=None)
        self.run(self._start())

    async def _start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def stop(self) -> None:
        self.http.close()
        try:
            self.run(self._runner.cleanup())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._server_thread.join(timeout=30)
            self._loop.close()
            self._sock.close()
