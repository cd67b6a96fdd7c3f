"""Two nodes in one test process: two apps on one PostgreSQL schema and one Redis prefix.

The served-process tests (several `lucky serve`) are in test_cluster*.py; these are the quick
ones, each node a real aiohttp server with real WebSocket clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ..chat.conftest import Chat, MakeChat, User, make_chat  # noqa: F401 - a fixture
from ..services import REDIS_URL, redis_prefix

TwoNodes = tuple[Chat, Chat]


@pytest.fixture
def backend() -> str:
    return "postgres"  # several nodes need a shared database server


@pytest.fixture
async def two_nodes(make_chat: MakeChat) -> TwoNodes:
    redis = {"url": REDIS_URL, "prefix": redis_prefix(), "lease_s": 3}
    return await make_chat(redis=redis), await make_chat(redis=redis)


async def user_on(node: Chat, first: Chat, username: str) -> User:
    """A user registered through `first`, its token used on `node`."""
    user = await first.user(username)
    return User(user.api, username)


MakeNodes = Callable[..., Awaitable[Any]]
