"""Fixtures of the outbox and push tests: a recording push gateway, and chat servers that
push to it (the chat tests' `make_chat`, with a [push] section)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..chat.conftest import Chat, MakeChat, chat, make_chat  # noqa: F401 - the chat tests' fixtures, reused
from .receiver import SECRET, Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    gateway = Receiver()
    await gateway.start()
    yield gateway
    await gateway.stop()


def push_section(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {"webhook_url": receiver.url, "webhook_secret": SECRET, "timeout_s": 0.5, **extra}


@pytest.fixture
async def push_chat(make_chat: MakeChat, receiver: Receiver) -> Chat:
    """A chat server whose offline push goes to `receiver` (answers later than 0.5 s fail)."""
    return await make_chat(push=push_section(receiver))
