"""Every Redis key and channel Lucky uses, in one place (listed in docs/scaling.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "lucky"

    @property
    def nodes(self) -> str:
        """A set of the instances on the bus (dead ones pruned by the live nodes)."""
        return f"{self.prefix}:nodes"

    def node(self, instance: str) -> str:
        """A node's heartbeat: JSON (name, host, pid, version, clock skew), with a TTL."""
        return f"{self.prefix}:node:{instance}"

    def presence(self, instance: str) -> str:
        """A hash of the user ids with a socket on the node, with the node's TTL."""
        return f"{self.prefix}:presence:{instance}"

    def to(self, instance: str) -> str:
        """The channel of frames for one node's sockets."""
        return f"{self.prefix}:to:{instance}"

    @property
    def all(self) -> str:
        """The channel every node listens to: presence changes and broadcasts."""
        return f"{self.prefix}:all"

    def worker(self, worker_id: int) -> str:
        """A Snowflake worker id leased by one instance."""
        return f"{self.prefix}:worker:{worker_id}"

    def rate(self, limiter: str, key: str) -> str:
        return f"{self.prefix}:rate:{limiter}:{key}"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"

    def call(self, call_id: str) -> str:
        """The instance that owns a call (runs its state machine), with a TTL renewed while it lives."""
        return f"{self.prefix}:call:{call_id}"

    def busy(self, user_id: int) -> str:
        """The call a user is a participant of (the busy rule across nodes), with the same TTL."""
        return f"{self.prefix}:busy:{user_id}"

    def group_call(self, group_id: int) -> str:
        """A group's live call (one at a time, whichever node it runs on), with the same TTL."""
        return f"{self.prefix}:groupcall:{group_id}"
