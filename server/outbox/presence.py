"""Whether a user has a connected device: the one question offline push asks of presence.

The bus answers it (server/bus): this node's sessions on the embedded default, and on a site of
several nodes also the replica of who is connected where, without the push planner changing.
"""

from __future__ import annotations

from typing import Protocol


class Presence(Protocol):
    def is_online(self, user_id: int) -> bool:
        """True if the user has at least one connected device (answered from memory)."""
