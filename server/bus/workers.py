"""Snowflake worker ids leased per node in Redis, so no two live processes share one.

A node takes the first free id with SET NX and a TTL, and its heartbeat renews it. Should the
lease be lost (Redis restarted empty and another process took the id meanwhile), the node
moves to a free id: ids made before and after stay unique, since no two holders overlap.
"""

from __future__ import annotations

import logging
import os
import random

import redis.asyncio as aioredis

from ..clock import Clock
from ..ids import MAX_WORKER, Snowflake
from .keys import RedisKeys

log = logging.getLogger(__name__)

# Kept out of the leased range: a CLI run that cannot reach Redis makes its few ids with it.
OFFLINE_WORKER = MAX_WORKER

# Renew only a lease that is still ours; take it again if it has expired (Redis restarted).
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 2 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NoFreeWorker(Exception):
    pass


class WorkerLease:
    def __init__(self, keys: RedisKeys, instance: str, lease_ms: int) -> None:
        self._keys = keys
        self._instance = instance
        self._lease_ms = lease_ms
        self.worker_id = -1
        self._ids: Snowflake | None = None  # moved to a new id should the lease be lost

    async def snowflake(self, client: aioredis.Redis, clock: Clock) -> Snowflake:
        """Ids made under a leased worker id; the offline one (said in a warning) when Redis
        cannot be reached, which only a CLI run outlives: a server then refuses to start."""
        try:
            worker = await self.acquire(client)
        except Exception as exc:  # noqa: BLE001 - Redis unreachable, or every id taken
            log.warning("cannot lease a Snowflake worker id from Redis (%s); process %d uses the offline id %d",
                        exc, os.getpid(), OFFLINE_WORKER)
            worker = OFFLINE_WORKER
        self._ids = Snowflake(worker, clock)
        return self._ids

    async def acquire(self, client: aioredis.Redis) -> int:
        start = random.randrange(OFFLINE_WORKER)  # nodes starting together rarely contend
        for step in range(OFFLINE_WORKER):
            candidate = (start + step) % OFFLINE_WORKER
            if await client.set(self._keys.worker(candidate), self._instance, nx=True, px=self._lease_ms):
                self.worker_id = candidate
                return candidate
        raise NoFreeWorker(f"all {OFFLINE_WORKER} Snowflake worker ids are leased")

    async def renew(self, client: aioredis.Redis) -> None:
        if self.worker_id < 0:
            return
        kept = await client.eval(_RENEW, 1, self._keys.worker(self.worker_id), self._instance, self._lease_ms)
        if int(kept) == 0:
            lost = self.worker_id
            new = await self.acquire(client)
            if self._ids is not None:
                self._ids.use_worker(new)
            log.error("Snowflake worker id %d was taken by another process while Redis was away; "
                      "this node now makes ids as worker %d", lost, new)

    async def release(self, client: aioredis.Redis) -> None:
        if self.worker_id >= 0:
            await client.eval(_RELEASE, 1, self._keys.worker(self.worker_id), self._instance)
