"""The bus of a single node: this node's sessions are every session there is."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from ..chat.delivery import Sessions
from .port import Broadcast, Published

log = logging.getLogger(__name__)


class LocalBus:
    def __init__(self, sessions: Sessions, instance: str = "local") -> None:
        self._sessions = sessions
        self._handlers: dict[str, list[Broadcast]] = {}
        self.instance = instance

    def push_message(self, user_ids: Collection[int], conversation_id: str, seq: int, frame: bytes,
                     now: float, origin: int | None, message_id: int) -> bool:
        self._sessions.push_message(user_ids, conversation_id, seq, frame, now, origin)
        return True

    def push_event(self, user_ids: Collection[int], frame: bytes, skip: int | None = None) -> None:
        self._sessions.push_event(user_ids, frame, skip)

    def is_online(self, user_id: int) -> bool:
        return bool(self._sessions.of_user(user_id))

    def online_elsewhere(self, user_id: int) -> bool:
        return False

    async def connected(self, user_id: int) -> None:
        return None

    async def disconnected(self, user_id: int) -> None:
        return None

    def on(self, topic: str, handler: Broadcast) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def broadcast(self, topic: str, payload: dict[str, Any]) -> None:
        await run_handlers(self._handlers, topic, payload)

    async def tell(self, instance: str, topic: str, payload: dict[str, Any]) -> None:
        if instance == self.instance:
            await run_handlers(self._handlers, topic, payload)

    def holders(self, user_id: int) -> set[str]:
        return {self.instance} if self._sessions.of_user(user_id) else set()

    async def drain(self) -> None:
        return None

    def set_published(self, published: Published) -> None:
        return None  # every push is done by the time push_message returns

    def status(self) -> tuple[bool, str]:
        return True, "in process (embedded)"

    def nodes_online(self) -> int:
        return 1

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def run_handlers(handlers: dict[str, list[Broadcast]], topic: str, payload: dict[str, Any]) -> None:
    for handler in handlers.get(topic, ()):
        try:
            await handler(payload)
        except Exception:  # one handler's failure must not keep the others from running
            log.exception("bus handler for %r failed", topic)
