"""Whether a user has a connected device: the one question offline push asks of presence.

Today the answer is this node's sessions; a site of several nodes will answer it from the
shared presence (Redis) behind the same protocol, without the push planner changing.
"""

from __future__ import annotations

from typing import Protocol

from ..chat.delivery import Sessions


class Presence(Protocol):
    def is_online(self, user_id: int) -> bool:
        """True if the user has at least one connected device (answered from memory)."""


class LocalPresence:
    """Presence as this node sees it: a user is online with a session here."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def is_online(self, user_id: int) -> bool:
        return bool(self._sessions.of_user(user_id))
