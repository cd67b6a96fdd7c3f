"""The nodes on the bus as Redis sees them, for `lucky doctor` on a site of several nodes.

Each node writes its heartbeat to `P:node:<instance>` (JSON, with a TTL) and lists itself in
`P:nodes` (docs/scaling.md, "Redis keys"). A heartbeat carries the node's clock and its skew
against Redis `TIME`, measured at that beat; so the age of a beat is read on Redis's clock,
and the skews of all nodes share one reference. Nodes whose clocks disagree by more than a
second hand out tokens that expire early or late elsewhere and order retries oddly, and
nodes of different versions may speak different frames: both are reported as problems.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import orjson

from ..bus.keys import RedisKeys
from ..clock import Clock

MAX_SKEW_MS = 1000


@dataclass(frozen=True)
class NodeBeat:
    """One live node's last heartbeat."""

    name: str
    instance: str
    host: str
    pid: int
    version: str
    up_ms: int  # since it started, on Redis's clock
    skew_ms: int  # its wall clock minus Redis TIME, at that heartbeat
    age_ms: int  # since that heartbeat, on Redis's clock
    connections: int | None


@dataclass(frozen=True)
class NodesView:
    nodes: list[NodeBeat]
    own_skew_ms: int  # this machine's wall clock minus Redis TIME, now
    host: str  # this machine

    @property
    def problems(self) -> list[str]:
        """What is wrong across the nodes, one sentence each (empty when all is well)."""
        found = [f"node {n.instance} on {n.host}: clock {_skew_words(n.skew_ms)} Redis (more than "
                 f"{MAX_SKEW_MS} ms): run NTP (chrony, systemd-timesyncd) there"
                 for n in self.nodes if abs(n.skew_ms) > MAX_SKEW_MS]
        if abs(self.own_skew_ms) > MAX_SKEW_MS:
            found.append(f"this machine ({self.host}): clock {_skew_words(self.own_skew_ms)} Redis: run NTP here")
        versions = sorted({n.version for n in self.nodes})
        if len(versions) > 1:
            found.append(f"nodes run different versions ({', '.join(versions)}): finish the upgrade on every node")
        return found


def _skew_words(skew_ms: int) -> str:
    return f"{abs(skew_ms) / 1000:.1f} s {'ahead of' if skew_ms > 0 else 'behind'}"


def _parse(raw: bytes | str, instance: str, redis_now_ms: int) -> NodeBeat | None:
    """A heartbeat as a node wrote it; None when it is not one (a foreign key, a newer format)."""
    try:
        info: dict[str, Any] = orjson.loads(raw)
        skew = int(info["skew_ms"])
        # The node's clock at its beat, moved onto Redis's clock by the skew it measured then.
        age = redis_now_ms - (int(info["clock_ms"]) - skew)
        up = redis_now_ms - (int(info.get("started_ms", 0)) - skew)
        connections = info.get("connections")
        return NodeBeat(str(info.get("name", "")), str(info.get("instance", instance)), str(info.get("host", "")),
                        int(info.get("pid", 0)), str(info.get("version", "?")), max(0, up), skew, max(0, age),
                        int(connections) if connections is not None else None)
    except (ValueError, TypeError, KeyError):
        return None


async def read_nodes(url: str, prefix: str, clock: Clock | None = None) -> NodesView:
    """Every node whose heartbeat is alive in Redis, ordered by name; raises if Redis cannot be read."""
    import redis.asyncio as aioredis

    clock = clock or Clock()
    keys = RedisKeys(prefix)
    client = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        before = clock.now_ms()
        seconds, micros = await client.time()
        after = clock.now_ms()
        redis_now = int(seconds) * 1000 + int(micros) // 1000
        own_skew = (before + after) // 2 - redis_now
        instances = sorted(i.decode() if isinstance(i, bytes) else str(i) for i in await client.smembers(keys.nodes))
        beats = await client.mget([keys.node(i) for i in instances]) if instances else []
    finally:
        await client.aclose()
    nodes = [beat for beat in (_parse(raw, i, redis_now) for i, raw in zip(instances, beats) if raw is not None)
             if beat is not None]
    nodes.sort(key=lambda n: (n.name, n.instance))
    return NodesView(nodes, own_skew, socket.gethostname())
