"""Checking each configured backend; shared by `/readyz` and `lucky doctor`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..blobs import BlobStore, open_blob_store
from ..clock import Clock
from ..config import Config
from ..storage import Database, DatabaseError
from ..storage.migrate import status as schema_status
from ..storage.stores.jobs import JobStore
from ..jobs.service import JobWarning, job_warnings
from .nodes import MAX_SKEW_MS, NodesView, read_nodes


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    target: str
    detail: str
    seconds: float


async def _timed(name: str, target: str, coro: Awaitable[str]) -> Check:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(coro, timeout=5)
        return Check(name, True, target, str(detail), time.perf_counter() - started)
    except asyncio.TimeoutError:
        return Check(name, False, target, "no answer within 5 s", time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return Check(name, False, target, str(exc).strip() or type(exc).__name__,
                     time.perf_counter() - started)


async def _database(db: Database) -> str:
    await db.ping()
    state = await schema_status(db)
    if state.current > state.latest:
        raise DatabaseError(f"schema v{state.current} is newer than this Lucky (v{state.latest})")
    if state.pending:
        raise DatabaseError(f"schema v{state.current}, {state.pending} migration(s) pending: run `lucky migrate`")
    return f"schema v{state.current}, up to date"


async def _redis(url: str) -> str:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
        info = await client.info("server")
        return f"redis {info.get('redis_version', '?')}"
    finally:
        await client.aclose()


async def _storage(blobs: BlobStore | None, url: str) -> str:
    """The blob store's own check, the same one the files service relies on."""
    if blobs is not None:
        return await blobs.check()
    store = open_blob_store(url)  # `lucky doctor` runs without the services
    try:
        return await store.check()
    finally:
        await store.close()


def _storage_target(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return f"s3 {parts.hostname}:{parts.port}{parts.path}"
    return f"folder {unquote(parts.path)}"


async def check_all(config: Config, db: Database, blobs: BlobStore | None = None) -> list[Check]:
    """One check per backend, run concurrently; never raises.

    `blobs` is the running server's blob store; without it one is made from the config.
    """
    checks = [_timed("database", db.description, _database(db))]
    if config.redis.url:
        parts = urlsplit(config.redis.url)
        checks.append(_timed("redis", f"redis {parts.hostname}:{parts.port or 6379}", _redis(config.redis.url)))
    else:
        async def embedded() -> str:
            return "embedded: routing and presence in process"
        checks.append(_timed("redis", "none", embedded()))
    storage_url = config.storage_url
    checks.append(_timed("storage", _storage_target(storage_url), _storage(blobs, storage_url)))
    return list(await asyncio.gather(*checks))


async def warnings(db: Database, now_ms: int) -> list[JobWarning]:
    """What `lucky doctor` warns about without failing: jobs that keep failing or have not
    succeeded for three of their intervals, and a growing outbox or delivery backlog. None
    when the database cannot be read (its check says why)."""
    try:
        return await job_warnings(JobStore(db), now_ms)
    except Exception:  # noqa: BLE001 - the database check reports the failure
        return []


async def node_check(config: Config, clock: Clock | None = None) -> tuple[Check, NodesView | None]:
    """`lucky doctor`'s look at every node on the bus (`redis.url` set): fails when a clock is
    more than a second off Redis's or the nodes run different versions. Not part of /readyz:
    one node's clock is no reason to take another out of the load balancer."""
    started = time.perf_counter()
    target = f"redis {config.redis.prefix}:nodes"
    try:
        view = await asyncio.wait_for(read_nodes(config.redis.url, config.redis.prefix, clock), timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        detail = "no answer within 5 s" if isinstance(exc, asyncio.TimeoutError) else str(exc).strip()
        return Check("nodes", False, target, detail or type(exc).__name__, time.perf_counter() - started), None
    problems = view.problems
    if problems:
        detail = "; ".join(problems)
    elif view.nodes:
        detail = f"{len(view.nodes)} node(s) on the bus, one version, clocks within {MAX_SKEW_MS} ms of Redis"
    else:
        detail = "no node is on the bus (none is running)"
    return Check("nodes", not problems, target, detail, time.perf_counter() - started), view
