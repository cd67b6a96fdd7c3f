"""The `Bus` port: routing frames to the nodes that hold a user's sockets, and presence.

On the embedded default `LocalBus` wraps this node's `Sessions`: a push is a call. With
`redis.url` set, `RedisBus` also publishes to the other nodes, once per node that holds one of
the recipients, and keeps a replica of who is connected where (docs/scaling.md).
"""

from __future__ import annotations

from .keys import RedisKeys
from .local import LocalBus
from .port import OFFLINE, RESYNC, Broadcast, Bus, BusUnavailable

__all__ = ["OFFLINE", "RESYNC", "Broadcast", "Bus", "BusUnavailable", "LocalBus", "RedisKeys"]
