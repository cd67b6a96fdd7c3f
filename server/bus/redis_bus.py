"""The bus of a site of several nodes, over Redis (docs/scaling.md, "How the bus works").

Each node keeps, in memory, a replica of which other nodes hold a socket of each user: loaded
whole when it (re)subscribes, then kept current by the presence entries every node publishes on
the shared channel when a user's first socket on it opens or its last one closes. So routing a
message costs no Redis read: the node pushes to its own sockets, then publishes once to each
other node that holds a recipient, and the entries a flush has for one node go in one PUBLISH.

Pub/sub may drop (a node or Redis restarting): nothing is lost, because a message whose
publishes did not go out keeps its outbox row (`on_published` only hears of those that did),
which the outbox job dispatches again, and devices `ack` and `sync` over every other gap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Collection
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from .. import __version__
from ..chat.delivery import Sessions
from ..clock import Clock
from ..tasks import cancel_and_wait
from . import wire
from .keys import RedisKeys
from .local import run_handlers
from .port import OFFLINE, RESYNC, Broadcast, BusUnavailable, Published
from .workers import WorkerLease

log = logging.getLogger(__name__)

RELOAD_EVERY = 20  # heartbeats between full re-reads of who is connected where
RECONNECT_S = (0.1, 0.25, 0.5, 1.0, 2.0)  # waits between reconnects, the last repeated


MAX_CONNECTIONS = 32  # a burst of socket opens or closes queues for these, never fails


def connect(url: str) -> aioredis.Redis:
    """A client that fails fast when Redis is gone, so an outage costs a node seconds, not
    minutes; and whose pool waits for a free connection rather than failing (redis-py's default
    pool raises past its limit: 100 sockets closing at once took a node's bus down)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=10, socket_timeout=3, socket_connect_timeout=3,
        health_check_interval=10)
    return aioredis.Redis(connection_pool=pool)


class RedisBus:
    def __init__(self, url: str, keys: RedisKeys, instance: str, name: str, sessions: Sessions, clock: Clock,
                 lease_s: float, worker: WorkerLease | None = None, public_url: str = "") -> None:
        self.instance = instance
        self._url = url
        self._keys = keys
        self._name = name
        self._sessions = sessions
        self._clock = clock
        self._lease_ms = int(lease_s * 1000)
        self._beat_s = max(lease_s / 3, 0.2)
        self._worker = worker
        self._public_url = public_url
        self.client = self._client = connect(url)
        self._handlers: dict[str, list[Broadcast]] = {}
        self._elsewhere: dict[int, set[str]] = {}  # user id -> the other instances holding a socket
        self._nodes: set[str] = set()  # other instances seen alive
        self._replaying: list[tuple[str, int, bool]] | None = None
        self._outgoing: dict[str, list[bytes]] = {}  # channel -> entries of the next flush
        self._waiting_ids: list[int] = []  # messages whose remote pushes are in the next flush
        self._presence_changes: set[int] = set()  # users whose presence here changed since the last flush
        self._arriving: dict[int, int] = {}  # user id -> sockets announcing it before their welcome
        self._wake = asyncio.Event()
        self._round: asyncio.Future[None] | None = None  # the next flush's outcome, for drain()
        self._published: Published = lambda ids: None
        self._tasks: list[asyncio.Task[None]] = []
        # Broadcasts from other nodes, handled one at a time in the order they came (a call's
        # signals must not overtake each other), off the listener so it never waits on a handler.
        self._inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._up = False
        self._detail = "not started"
        self.publishes = 0  # PUBLISH commands sent (bench: Redis commands per message)
        self.received = 0

    # --- routing ---------------------------------------------------------------------------------

    def push_message(self, user_ids: Collection[int], conversation_id: str, seq: int, frame: bytes,
                     now: float, origin: int | None, message_id: int) -> bool:
        self._sessions.push_message(user_ids, conversation_id, seq, frame, now, origin)
        targets = self._targets(user_ids)
        if not targets:
            return True
        for instance, users in targets.items():
            self._queue(self._keys.to(instance), wire.message_entry(users, conversation_id, seq, frame))
        self._waiting_ids.append(message_id)
        return False

    def push_event(self, user_ids: Collection[int], frame: bytes, skip: int | None = None) -> None:
        self._sessions.push_event(user_ids, frame, skip)
        for instance, users in self._targets(user_ids).items():
            self._queue(self._keys.to(instance), wire.event_entry(users, frame))

    def _targets(self, user_ids: Collection[int]) -> dict[str, list[int]]:
        elsewhere = self._elsewhere
        if not elsewhere:
            return {}
        targets: dict[str, list[int]] = {}
        for user_id in user_ids:
            instances = elsewhere.get(user_id)
            if instances is None:
                continue
            for instance in instances:
                users = targets.get(instance)
                if users is None:  # not setdefault: no list made and dropped per member
                    targets[instance] = [user_id]
                else:
                    users.append(user_id)
        return targets

    def _queue(self, channel: str, entry: bytes) -> None:
        self._outgoing.setdefault(channel, []).append(entry)
        self._wake.set()

    # --- presence --------------------------------------------------------------------------------

    def is_online(self, user_id: int) -> bool:
        return bool(self._sessions.of_user(user_id)) or user_id in self._elsewhere

    def online_elsewhere(self, user_id: int) -> bool:
        return user_id in self._elsewhere

    async def connected(self, user_id: int) -> None:
        """Called before the user's first socket here gets its welcome: once this returns every
        node routes the user's messages here, so what the device's first `sync` does not return
        (committed after it) is pushed. Waits for the write, never fails (Redis down: rewritten
        whole when it is back)."""
        self._arriving[user_id] = self._arriving.get(user_id, 0) + 1
        try:
            self._changed(user_id)
            try:
                await self.drain()
            except BusUnavailable:
                pass
        finally:
            left = self._arriving.pop(user_id) - 1
            if left:
                self._arriving[user_id] = left
            else:
                self._changed(user_id)  # a socket given up before it was added: written as it now is

    async def disconnected(self, user_id: int) -> None:
        self._changed(user_id)

    def _changed(self, user_id: int) -> None:
        # Written by the flusher as the user's state is *then* (a socket here, or one arriving),
        # not here: a socket's handler may be cancelled while waiting for Redis, and a burst of
        # opens or closes becomes one pipeline and one PUBLISH.
        self._presence_changes.add(user_id)
        self._wake.set()

    def _here(self, user_id: int) -> bool:
        return bool(self._sessions.of_user(user_id)) or user_id in self._arriving

    def nodes_online(self) -> int:
        return len(self._nodes) + 1

    # --- broadcasts ------------------------------------------------------------------------------

    def on(self, topic: str, handler: Broadcast) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def broadcast(self, topic: str, payload: dict[str, Any]) -> None:
        await run_handlers(self._handlers, topic, payload)
        self._queue(self._keys.all, wire.broadcast_entry(self.instance, topic, payload))
        if not self._tasks:  # not serving (a CLI run): no flusher, so out now
            await self._flush()

    async def tell(self, instance: str, topic: str, payload: dict[str, Any]) -> None:
        if instance == self.instance:
            await run_handlers(self._handlers, topic, payload)
            return
        self._queue(self._keys.to(instance), wire.broadcast_entry(self.instance, topic, payload))
        if not self._tasks:
            await self._flush()

    def holders(self, user_id: int) -> set[str]:
        found = set(self._elsewhere.get(user_id, ()))
        if self._sessions.of_user(user_id):
            found.add(self.instance)
        return found

    # --- flushing --------------------------------------------------------------------------------

    def set_published(self, published: Published) -> None:
        self._published = published

    async def drain(self) -> None:
        if not self._outgoing and not self._presence_changes:
            return
        if self._round is None:
            self._round = asyncio.get_running_loop().create_future()
        self._wake.set()
        await asyncio.shield(self._round)

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, {}
        ids, self._waiting_ids = self._waiting_ids, []
        done, self._round = self._round, None
        if not outgoing and not self._presence_changes:
            if done is not None and not done.done():
                done.set_result(None)
            return
        failure: BaseException | None = None
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                writes = self._presence_writes(pipe)
                for channel, entries in outgoing.items():
                    pipe.publish(channel, b"".join(entries))
                receivers = (await pipe.execute())[writes:]
            self.publishes += len(outgoing)
            # Nobody listening on a node's channel does not mean the node is gone: after a Redis
            # restart it is back only once it has resubscribed (up to its reconnect backoff), and
            # its users are still connected to it, so they will not sync. Those messages keep
            # their outbox rows (redispatched after outbox.grace_s), and the node stays in the
            # replica: a dead one is forgotten when its lease runs out (_prune). Forgetting it
            # here, and marking these published, lost every message sent in that window
            # (tests/cluster/test_faults.py, Redis killed and restarted mid-burst).
            if any(count == 0 for channel, count in zip(outgoing, receivers) if channel != self._keys.all):
                # A redispatch waiting in drain() is tried again later, not counted done.
                failure = BusUnavailable("a node holding a recipient is not listening (resubscribing after a "
                                         "Redis restart, or dead until its lease ends); the outbox retries")
        except (RedisError, OSError) as exc:
            self._down(exc)
            failure = BusUnavailable(f"Redis is unreachable ({exc}); remote pushes wait in the outbox.")
        if failure is None and ids:
            self._published(ids)
        if done is not None and not done.done():
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)

    def _presence_writes(self, pipe: Any) -> int:
        """Queue this node's presence hash changes on `pipe`, and their entries for the other
        nodes; how many commands were queued on `pipe`."""
        changes, self._presence_changes = self._presence_changes, set()
        if not changes:
            return 0
        key = self._keys.presence(self.instance)
        states = {user_id: self._here(user_id) for user_id in changes}
        online = {str(u): "1" for u, here in states.items() if here}
        offline = [str(u) for u, here in states.items() if not here]
        if online:
            pipe.hset(key, mapping=online)
        if offline:
            pipe.hdel(key, *offline)
        pipe.pexpire(key, self._lease_ms)
        # First in the flush: a node must know where a user is before it gets their frames.
        entries = b"".join(wire.presence_entry(self.instance, u, here) for u, here in states.items())
        pipe.publish(self._keys.all, entries)
        return bool(online) + bool(offline) + 2

    # --- receiving -------------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self._keys.to(self.instance), self._keys.all)
                await self._announce_self()
                # After an outage Redis may have restarted empty, and the other nodes write their
                # presence again only once they too have resubscribed: what the replica knew is
                # kept beside what is read, or a message to their users sent in between would find
                # no node to go to and be marked dispatched (tests/cluster/test_faults.py). The
                # periodic full re-read drops what is stale.
                await self._load_replica(keep=True)
                self._up_again()
                attempt = 0
                while True:
                    message = await pubsub.get_message(timeout=self._beat_s)
                    if message is not None:
                        self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._down(exc)
            except Exception:  # a bug must not end the node's listening for good
                log.exception("bus listener failed; resubscribing")
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # noqa: BLE001 - the connection is already broken
                        pass
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1

    def _receive(self, payload: bytes) -> None:
        now = self._clock.monotonic()
        try:
            for entry in wire.entries(payload):
                head = entry.head
                kind = head.get("t")
                if kind == wire.MESSAGE:
                    self.received += 1
                    self._sessions.push_message(head["u"], head["c"], head["s"], entry.frame, now)
                elif kind == wire.EVENT:
                    self._sessions.push_event(head["u"], entry.frame)
                elif head.get("n") == self.instance:
                    continue  # our own presence or broadcast, already applied here
                elif kind == wire.PRESENCE:
                    self._seen(head["n"], int(head["u"]), bool(head["on"]))
                elif kind == wire.BROADCAST:
                    self._inbox.put_nowait((head["topic"], head["p"]))
                elif kind == wire.GONE:
                    self._forget_node(head["n"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed bus payload of %d bytes", len(payload))

    async def _handle_forever(self) -> None:
        while True:
            topic, payload = await self._inbox.get()
            await run_handlers(self._handlers, topic, payload)

    def _seen(self, instance: str, user_id: int, online: bool) -> None:
        if self._replaying is not None:
            self._replaying.append((instance, user_id, online))  # applied again to the fresh replica
        self._nodes.add(instance)
        if online:
            self._elsewhere.setdefault(user_id, set()).add(instance)
            return
        holders = self._elsewhere.get(user_id)
        if holders is not None:
            holders.discard(instance)
            if not holders:
                del self._elsewhere[user_id]

    def _forget_node(self, instance: str) -> None:
        if instance not in self._nodes:
            return
        for user_id in [u for u, holders in self._elsewhere.items() if instance in holders]:
            self._seen(instance, user_id, False)
        # After the loop: _seen counts the node it hears from, which had kept a dead node with
        # users in /readyz's count until the next full re-read (tests/cluster/test_faults.py).
        self._nodes.discard(instance)

    async def _load_replica(self, keep: bool = False) -> None:
        """Who is connected where, read whole: at every (re)subscribe, since entries published
        while this node was not listening are lost; with `keep`, added to what was known."""
        instances = [_text(i) for i in await self._client.smembers(self._keys.nodes)]
        others = [i for i in instances if i != self.instance]
        alive = await self._client.mget([self._keys.node(i) for i in others]) if others else []
        elsewhere: dict[int, set[str]] = {}
        nodes: set[str] = set()
        self._replaying = []  # presence entries handled while reading: newer than what is read
        try:
            for instance, beat in zip(others, alive):
                if beat is None:
                    continue
                nodes.add(instance)
                for user in await self._client.hkeys(self._keys.presence(instance)):
                    elsewhere.setdefault(int(user), set()).add(instance)
        finally:
            replay, self._replaying = self._replaying, None
        if keep:
            for user_id, holders in self._elsewhere.items():
                elsewhere.setdefault(user_id, set()).update(holders)
            nodes |= self._nodes
        self._elsewhere, self._nodes = elsewhere, nodes
        for instance, user_id, online in replay:
            self._seen(instance, user_id, online)

    # --- this node's heartbeat -------------------------------------------------------------------

    async def _announce_self(self) -> None:
        """This node's lease, its presence written whole (Redis may have restarted empty), its id."""
        self._presence_changes.clear()  # the whole state below supersedes them
        users = [str(u) for u in self._sessions.user_ids()]
        key = self._keys.presence(self.instance)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            if users:
                pipe.hset(key, mapping={u: "1" for u in users})
                pipe.pexpire(key, self._lease_ms)
            pipe.sadd(self._keys.nodes, self.instance)
            await pipe.execute()
        await self._beat()
        for user in users:
            self._queue(self._keys.all, wire.presence_entry(self.instance, int(user), True))

    async def _beat(self) -> None:
        before = self._clock.now_ms()
        seconds, micros = await self._client.time()
        after = self._clock.now_ms()
        skew = (before + after) // 2 - (int(seconds) * 1000 + int(micros) // 1000)
        info = {"name": self._name, "instance": self.instance, "host": socket.gethostname(), "pid": os.getpid(),
                "version": __version__, "started_ms": self._started_ms, "clock_ms": after, "skew_ms": skew,
                "url": self._public_url, "connections": self._sessions.count()}
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.node(self.instance), orjson.dumps(info), px=self._lease_ms)
            pipe.pexpire(self._keys.presence(self.instance), self._lease_ms)
            pipe.sadd(self._keys.nodes, self.instance)
            await pipe.execute()
        if self._worker is not None:
            await self._worker.renew(self._client)

    async def _beat_forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self._beat_s)
            ticks += 1
            try:
                if not self._up:
                    # The listener announces this node again when its own connection broke; when
                    # only commands failed (its subscription held), this brings the node back.
                    await self._announce_self()
                    await self._load_replica(keep=True)
                    self._up_again()
                    continue
                await self._beat()
                if ticks % 3 == 0:
                    await self._prune()
                if ticks % RELOAD_EVERY == 0:
                    await self._load_replica()  # a safety net: pub/sub never said otherwise
            except (RedisError, OSError) as exc:
                self._down(exc)
            except Exception:
                log.exception("bus heartbeat failed")

    async def _prune(self) -> None:
        """Forget nodes whose lease ran out (killed without saying goodbye)."""
        instances = [_text(i) for i in await self._client.smembers(self._keys.nodes)]
        others = [i for i in instances if i != self.instance]
        if not others:
            return
        alive = await self._client.mget([self._keys.node(i) for i in others])
        dead = [i for i, beat in zip(others, alive) if beat is None]
        # A node that joined with no user connected has published nothing the listener would
        # see: counted from its lease here, not only at the next full re-read (20 heartbeats).
        self._nodes.update(i for i, beat in zip(others, alive) if beat is not None)
        # Users whose only sockets were on a dead node are offline now.
        orphans = {i: [u for u, holders in self._elsewhere.items() if holders == {i} and not self._here(u)]
                   for i in dead}
        for instance in dead:
            log.warning("node %s stopped renewing its lease; its users' sockets are gone", instance)
            self._forget_node(instance)
        if dead:
            async with self._client.pipeline(transaction=False) as pipe:
                for instance in dead:  # one SREM each: the node that removes it speaks for it
                    pipe.srem(self._keys.nodes, instance)
                pipe.delete(*[self._keys.presence(i) for i in dead])
                # Said for the dead node: once it is out of the set, the other nodes' prunes no
                # longer see it, and they kept its users online until their next full re-read
                # (tests/cluster/test_faults.py).
                pipe.publish(self._keys.all, b"".join(wire.gone_entry(i) for i in dead))
                removed = (await pipe.execute())[:len(dead)]
            offline = [u for instance, won in zip(dead, removed) if won for u in orphans[instance]]
            if offline:  # their friends hear it once, from this node (the dead one cannot say it)
                self._inbox.put_nowait((OFFLINE, {"user_ids": offline}))

    # --- health ----------------------------------------------------------------------------------

    def _down(self, exc: BaseException) -> None:
        if self._up:
            log.warning("Redis at %s is unreachable (%s): local delivery goes on; remote pushes wait in "
                        "the outbox until it is back", _safe(self._url), exc)
        self._up = False
        self._detail = f"unreachable: {exc}"

    def _up_again(self) -> None:
        if not self._up and self._detail != "not started":
            log.warning("Redis at %s is back: remote delivery resumes", _safe(self._url))
            # Broadcasts sent while this node was away are lost: caches fed by them start over.
            self._inbox.put_nowait((RESYNC, {}))
        self._up = True
        self._detail = f"{len(self._nodes) + 1} node(s) on the bus"

    def status(self) -> tuple[bool, str]:
        if self._up:
            self._detail = f"{len(self._nodes) + 1} node(s) on the bus"
        return self._up, self._detail

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the bus: announce this node, load the replica and listen. Raises if Redis cannot
        be reached now (a node does not start blind); later outages are ridden out."""
        self._started_ms = self._clock.now_ms()
        try:
            await self._announce_self()
            await self._load_replica()
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"cannot reach Redis at {_safe(self._url)} ({exc}): start Redis, which every node "
                                 "needs to join the others, or leave redis.url empty on a single node") from None
        self._up_again()
        self._tasks = [asyncio.create_task(self._listen_forever(), name="bus-listen"),
                       asyncio.create_task(self._flush_forever(), name="bus-flush"),
                       asyncio.create_task(self._beat_forever(), name="bus-beat"),
                       asyncio.create_task(self._handle_forever(), name="bus-handle")]

    async def stop(self) -> None:
        """Leave the bus: last pushes out, this node's presence and heartbeat removed, the others told."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)
        try:
            await self._flush()
            if self._up:
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.delete(self._keys.node(self.instance), self._keys.presence(self.instance))
                    pipe.srem(self._keys.nodes, self.instance)
                    pipe.publish(self._keys.all, wire.gone_entry(self.instance))
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("leaving the bus: Redis unreachable (%s); this node's lease expires by itself", exc)
        self._up = False

    async def close(self) -> None:
        """Release the Snowflake worker id and the connection (the server stops first)."""
        try:
            await self._flush()
            if self._worker is not None:
                await self._worker.release(self._client)
        except (RedisError, OSError):
            pass  # the lease expires by itself
        finally:
            await self._client.aclose()

    _started_ms = 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
