"""Which node owns each call, and who is in one, for a site of several nodes (Redis).

The node where a call is invited owns it: its state machine runs there, and frames about it
received by other nodes are forwarded there over the bus (service.py). Two keys per call
(docs/scaling.md, "Redis keys"): `<prefix>:call:<call_id>` -> the owner's instance, and
`<prefix>:busy:<user_id>` -> the call id for each participant (the busy rule across nodes).
Both carry a TTL the owner renews while the call lives, so the calls of a node that dies
without saying goodbye are gone from Redis within a lease (their parties are told nothing:
the node that would have told them is the one that died).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus import Bus, RedisKeys

log = logging.getLogger(__name__)

# Delete a busy (or group's call) key only if it still names this call (there may be a newer one).
_CLEAR = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def directory_for(bus: Bus, prefix: str, lease_s: float) -> CallDirectory | None:
    """The directory of a site whose bus is Redis; None on a single node (no other owner)."""
    from ..bus.redis_bus import RedisBus

    if not isinstance(bus, RedisBus):
        return None
    return CallDirectory(bus.client, RedisKeys(prefix), bus.instance, int(lease_s * 1000))


class CallDirectory:
    def __init__(self, client: aioredis.Redis, keys: RedisKeys, instance: str, lease_ms: int) -> None:
        self._client = client
        self._keys = keys
        self.instance = instance
        self._lease_ms = lease_ms
        self.renew_every_s = lease_ms / 3000  # the owner renews its calls' keys this often
        self._clear = client.register_script(_CLEAR)

    # While Redis is away each node runs the calls it has alone: no owner elsewhere is found,
    # nobody is busy elsewhere, and a new call is this node's.

    async def owner(self, call_id: str) -> str | None:
        """The instance owning the call, None if no live node does (or Redis is away)."""
        return await self._get(self._keys.call(call_id))

    async def busy(self, user_id: int) -> str | None:
        """The call the user is a participant of, on any node (None while Redis is away)."""
        return await self._get(self._keys.busy(user_id))

    async def _get(self, key: str) -> str | None:
        try:
            found = await self._client.get(key)
        except (RedisError, OSError) as exc:
            log.warning("calls: Redis unreachable (%s); this node answers for its own calls only", exc)
            return None
        return found.decode() if isinstance(found, bytes) else found

    async def claim(self, call_id: str) -> bool:
        """Own a new call; False if another node owns one of that id."""
        try:
            return bool(await self._client.set(self._keys.call(call_id), self.instance, nx=True, px=self._lease_ms))
        except (RedisError, OSError) as exc:
            log.warning("calls: Redis unreachable (%s); call %s runs here unannounced", exc, call_id)
            return True

    async def group_call(self, group_id: int) -> str | None:
        """The group's live call, on any node (None while Redis is away)."""
        return await self._get(self._keys.group_call(group_id))

    async def claim_group(self, group_id: int, call_id: str) -> bool:
        """Make the call the group's one live call; False if another runs."""
        try:
            return bool(await self._client.set(self._keys.group_call(group_id), call_id, nx=True,
                                               px=self._lease_ms))
        except (RedisError, OSError):
            return True  # logged by claim

    async def update(self, call_id: str, joined: Iterable[int], left: Iterable[int], keep_ms: int | None,
                     group_id: int | None = None) -> None:
        """Participants in (busy with this call) and out; `keep_ms`: the call ended, its owner
        is kept this long for late frames (and the group may start another)."""
        async with self._client.pipeline(transaction=False) as pipe:
            for user in joined:
                pipe.set(self._keys.busy(user), call_id, px=self._lease_ms)
            if keep_ms is not None:
                pipe.pexpire(self._keys.call(call_id), keep_ms)
            await pipe.execute()
        for key in [self._keys.busy(user) for user in left] + (
                [self._keys.group_call(group_id)] if keep_ms is not None and group_id is not None else []):
            await self._clear(keys=[key], args=[call_id])

    async def renew(self, calls: Iterable[tuple[str, Iterable[int], int | None]]) -> None:
        """Keep the live calls owned here, their participants' busy keys and their groups' call
        for another lease."""
        async with self._client.pipeline(transaction=False) as pipe:
            for call_id, participants, group_id in calls:
                pipe.pexpire(self._keys.call(call_id), self._lease_ms)
                if group_id is not None:
                    pipe.pexpire(self._keys.group_call(group_id), self._lease_ms)
                for user in participants:
                    pipe.pexpire(self._keys.busy(user), self._lease_ms)
            await pipe.execute()
