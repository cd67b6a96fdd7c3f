"""What the services ask of the bus; two implementations (local.py, redis_bus.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from ..errors import LuckyError

# Run on one node only, when it is back on the bus after an outage: what other nodes broadcast
# meanwhile is lost, so a cache kept current by broadcasts drops what it holds.
RESYNC = "bus.resync"
# Run on one node only, with {"user_ids"}: users whose every socket was on a node that died
# (its lease ran out), so that someone tells their friends they went offline.
OFFLINE = "bus.offline"

# A broadcast's handler: runs on every node (this one included) with the topic's payload.
Broadcast = Callable[[dict[str, Any]], Awaitable[None]]
# Told the ids of messages whose pushes to other nodes have gone out (their outbox rows end).
Published = Callable[[list[int]], None]


class BusUnavailable(LuckyError):
    """The other nodes could not be reached (Redis is down): what they should have had waits in
    the outbox, which retries."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "unavailable", message)


class Bus(Protocol):
    instance: str  # this node on the bus: "<node name>/<random per start>"

    def push_message(self, user_ids: Collection[int], conversation_id: str, seq: int, frame: bytes,
                     now: float, origin: int | None, message_id: int) -> bool:
        """Push a stored message's frame to every device of these users, on every node.

        True if it went everywhere already (only local sockets); False if pushes to other nodes
        are on their way: `on_published` hears `message_id` once they are out.
        """

    def push_event(self, user_ids: Collection[int], frame: bytes, skip: int | None = None) -> None:
        """Push a frame that is not a stored message (typing, receipts, presence, calls);
        dropped for nodes that cannot be reached: these frames are not kept anywhere."""

    def is_online(self, user_id: int) -> bool:
        """The user has a socket on some node (answered from memory)."""

    def online_elsewhere(self, user_id: int) -> bool:
        """The user has a socket on another node."""

    async def connected(self, user_id: int) -> None:
        """The user's first socket on this node opened."""

    async def disconnected(self, user_id: int) -> None:
        """The user's last socket on this node closed."""

    def on(self, topic: str, handler: Broadcast) -> None:
        """Run `handler` for every broadcast of `topic`, whichever node sent it."""

    async def broadcast(self, topic: str, payload: dict[str, Any]) -> None:
        """Run the topic's handlers here, then on every other node (best effort: a node that
        misses one catches up by its own means, say the revocation feed's poll)."""

    async def tell(self, instance: str, topic: str, payload: dict[str, Any]) -> None:
        """Run the topic's handlers on one node only (this one: at once), e.g. the node that owns
        a call; dropped if that node cannot be reached."""

    def holders(self, user_id: int) -> set[str]:
        """The instances holding a socket of the user (this one included)."""

    async def drain(self) -> None:
        """Wait until the pushes queued so far are out; BusUnavailable if they could not be."""

    def set_published(self, published: Published) -> None:
        """Who hears of the messages whose remote pushes went out (the send writer)."""

    def status(self) -> tuple[bool, str]:
        """(reachable, a one-line description) for /readyz and the console."""

    def nodes_online(self) -> int:
        """How many nodes are on the bus, this one included."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Leave the bus (the server, at shutdown)."""

    async def close(self) -> None:
        """Release what open_core took (a worker id lease, the connection)."""
