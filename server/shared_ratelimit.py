"""Rate limits that hold for the whole site: one token bucket per key in Redis, shared by every
node, so a client spreading its attempts over the nodes meets the limit a single node would set.

On the embedded default (no `redis.url`) a limiter is the in-process `RateLimiter`. With Redis,
each hit is one EVALSHA of a Lua token bucket (`P:rate:<limiter>:<key>`, a hash that expires once
it would be full again); Redis's own clock refills it, so nodes' clock skew does not matter. Should
Redis be unreachable, the node falls back to its in-process bucket (logged once per outage)
rather than refusing sign-ins: a limit per node is better than no sign-in at all.
"""

from __future__ import annotations

import logging
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .bus import Bus, RedisKeys
from .clock import Clock
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

RETRY_REDIS_S = 5.0  # after a failure, hits stay in process this long before Redis is tried again

# KEYS[1]: the bucket; ARGV: capacity (tokens), refill (tokens per ms). Answers 0 (taken) or the
# whole seconds to wait. Levels are floats: a refill of 5 a minute is a fraction of a token a ms.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'l', 't')
local level = tonumber(bucket[1]) or capacity
local last = tonumber(bucket[2]) or now
level = math.min(capacity, level + math.max(0, now - last) * refill)
local wait = 0
if level >= 1 then
  level = level - 1
else
  wait = math.max(1, math.ceil((1 - level) / refill / 1000))
end
redis.call('HSET', KEYS[1], 'l', tostring(level), 't', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - level) / refill) + 1000)
return wait
"""


class Limiter(Protocol):
    enabled: bool

    async def hit(self, key: str) -> int:
        """Take one token for `key`: 0 if allowed, else the seconds to wait before retrying."""


class LocalLimiter:
    """This process's buckets only (the embedded default: the process is the site)."""

    def __init__(self, clock: Clock, rate: int, per_s: float) -> None:
        self._buckets = RateLimiter(clock, rate, per_s)
        self.enabled = self._buckets.enabled

    async def hit(self, key: str) -> int:
        return self._buckets.hit(key)


class RedisLimiter:
    """One bucket per key in Redis; this process's buckets while Redis cannot be reached."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, name: str, clock: Clock, rate: int,
                 per_s: float) -> None:
        self._client = client
        self._keys = keys
        self._name = name
        self._clock = clock
        self._capacity = rate
        self._refill_per_ms = rate / (per_s * 1000) if per_s > 0 else 0.0
        self._fallback = RateLimiter(clock, rate, per_s)
        self._script = client.register_script(_TAKE)
        self._local_until = 0.0  # monotonic time before which hits stay in process
        self._down = False  # Redis failed and has not answered since (logged once)
        self.enabled = rate > 0 and self._refill_per_ms > 0

    async def hit(self, key: str) -> int:
        if not self.enabled:
            return 0
        if self._clock.monotonic() < self._local_until:
            return self._fallback.hit(key)
        try:
            wait = await self._script(keys=[self._keys.rate(self._name, key)],
                                      args=[self._capacity, repr(self._refill_per_ms)])
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning("rate limit %s: Redis unreachable (%s); limiting per node until it is back",
                            self._name, exc)
            self._down = True
            self._local_until = self._clock.monotonic() + RETRY_REDIS_S
            return self._fallback.hit(key)
        if self._down:
            log.warning("rate limit %s: Redis is back; the limit is shared by the nodes again", self._name)
            self._down = False
        return int(wait)


class Limits:
    """Makes the site's limiters: in Redis when the bus is, else in process."""

    def __init__(self, clock: Clock, client: aioredis.Redis | None, keys: RedisKeys) -> None:
        self._clock = clock
        self._client = client
        self._keys = keys

    @classmethod
    def over(cls, bus: Bus, clock: Clock, prefix: str) -> Limits:
        from .bus.redis_bus import RedisBus

        return cls(clock, bus.client if isinstance(bus, RedisBus) else None, RedisKeys(prefix))

    def limiter(self, name: str, rate: int, per_s: float) -> Limiter:
        """`rate` events per `per_s` seconds (bursts of `rate`) for each key; `name` tells the
        limits apart in Redis (`P:rate:<name>:<key>`)."""
        if self._client is None:
            return LocalLimiter(self._clock, rate, per_s)
        return RedisLimiter(self._client, self._keys, name, self._clock, rate, per_s)
