"""The HTTP edge towards a push gateway: POST a body, say whether it was taken.

The only module of the outbox package that speaks HTTP (aiohttp's client); the delivery
service above it signs, retries and records, and sees only `post`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp


class WebhookClient:
    """POSTs over one pooled aiohttp session, opened on first use."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> str | None:
        """None if the receiver answered 2xx within the timeout; else why not, in a few words."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(url, data=body, headers=dict(headers), allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}"
        except asyncio.TimeoutError:
            return f"no answer within {self._timeout.total:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
