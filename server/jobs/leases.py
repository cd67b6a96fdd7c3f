"""Where a job's lease lives: the database's `job_leases` on one node, Redis on a site of several.

With `redis.url` set, the lease is `<prefix>:lock:job:<name>` (DESIGN.md: "each job guarded by
a Redis lock so one node runs it"): taken with one atomic script (free, or ours already), renewed
by a compare-and-pexpire, released by a compare-and-del, so a holder never extends or drops a
lease another process took after its own expired. Records of runs stay in the database
(`job_runs`), which every node and the CLI read.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus import RedisKeys
from ..clock import Clock

# Free, or this holder's already (a repeated take renews it, as the database's upsert does).
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseUnavailable(Exception):
    """The lease's store cannot be reached (Redis is down): no node can take it, so the run is
    skipped, as when another holds it; the next tick tries again."""


class JobLeases(Protocol):
    async def acquire(self, name: str, holder: str, now_ms: int, lease_ms: int) -> bool:
        """Take the job's lease for `lease_ms` if it is free, expired, or `holder`'s already."""

    async def renew(self, name: str, holder: str, expires_at: int) -> bool:
        """Extend a lease `holder` still has; False if it was lost (it expired and was taken)."""

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` still has it."""

    async def held(self, now_ms: int) -> dict[str, str]:
        """Job name -> holder, for each lease that has not expired (a job running somewhere)."""


class RedisJobLeases:
    """Job leases as Redis keys with a TTL: expiry is Redis's, so nodes' clocks do not matter."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, clock: Clock) -> None:
        self._client = client
        self._keys = keys
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        # Each job's lease length as last taken here: a renewal extends it by as much again,
        # counted by Redis (the caller's `expires_at` is on its own clock, perhaps not Redis's).
        self._lease_ms: dict[str, int] = {}

    def _key(self, name: str) -> str:
        return self._keys.lock(f"job:{name}")

    async def acquire(self, name: str, holder: str, now_ms: int, lease_ms: int) -> bool:
        self._lease_ms[name] = lease_ms
        try:
            return int(await self._acquire(keys=[self._key(name)], args=[holder, lease_ms])) == 1
        except (RedisError, OSError) as exc:
            raise LeaseUnavailable(f"Redis is unreachable ({exc})") from None

    async def renew(self, name: str, holder: str, expires_at: int) -> bool:
        lease_ms = self._lease_ms.get(name) or max(expires_at - self._clock.now_ms(), 1)
        return int(await self._renew(keys=[self._key(name)], args=[holder, lease_ms])) == 1

    async def release(self, name: str, holder: str) -> None:
        await self._release(keys=[self._key(name)], args=[holder])

    async def held(self, now_ms: int) -> dict[str, str]:
        prefix = self._key("")
        names = [key async for key in self._client.scan_iter(match=f"{prefix}*", count=100)]
        holders = await self._client.mget(names) if names else []
        return {_text(key)[len(prefix):]: _text(holder) for key, holder in zip(names, holders) if holder is not None}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
