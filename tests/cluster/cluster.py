"""A real cluster: several `lucky serve` processes on one data dir, one PostgreSQL schema, one
Redis prefix (or a private `redis-server`) and an S3 server (moto in server mode).

Everything goes through the installed `lucky` script and real sockets, as an operator would
run a site: `lucky init` once, then `lucky serve --node-id nK --port 0` per node, each told
only the environment a node of a real site would get.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..cli.process import Served, clean_env, lucky
from ..services import REDIS_URL, drop_schema, moto_s3, postgres_url_with_fresh_schema, require

ADMIN_PASSWORD = "cluster admin secret"
LEASE_S = "2"  # a killed node's lease and presence expire within seconds, not the default 15

# What every node of a test cluster runs with: short leases, no rate limit standing between a
# test's bursts and the server, a quick outbox retry for the Redis-outage test, and the
# database revocation poll off, so that a kick across nodes can only have come over the bus.
NODE_ENV = {
    "LUCKY_REDIS__LEASE_S": LEASE_S,
    "LUCKY_AUTH__IP_RATE_PER_MIN": "100000",
    "LUCKY_AUTH__REVOCATION_POLL_S": "0",
    "LUCKY_CHAT__SEND_RATE_PER_S": "10000",
    "LUCKY_CHAT__SEND_BURST": "10000",
    "LUCKY_CHAT__FRAME_RATE_PER_S": "0",
    "LUCKY_OUTBOX__GRACE_S": "1",
    "LUCKY_JOBS__OUTBOX_EVERY_S": "1",
}


@contextmanager
def s3_server() -> Iterator[str]:
    """An S3 URL of a fresh bucket on a moto server of this test process."""
    with moto_s3() as endpoint:
        yield f"s3://testkey:testsecret@{endpoint}/lucky-{uuid.uuid4().hex[:16]}?secure=false"


class Cluster:
    """One initialized data dir and the nodes serving it; `nodes[i]` is node `n{i+1}`."""

    def __init__(self, data_dir: Path, database_url: str, redis_url: str, storage_url: str,
                 prefix: str, **env: str) -> None:
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.prefix = prefix
        self.env = clean_env(LUCKY_REDIS__PREFIX=prefix, **NODE_ENV, **env)
        done = lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-password", ADMIN_PASSWORD,
                     "--database", database_url, "--redis", redis_url, "--storage", storage_url, env=self.env)
        assert done.code == 0, done
        self.nodes: list[Served] = []

    def start(self, count: int) -> list[Served]:
        """Start `count` more nodes; each is listening when this returns."""
        started = []
        for _ in range(count):
            node = Served("--data-dir", self.data_dir, "--node-id", f"n{len(self.nodes) + 1}", env=self.env)
            self.nodes.append(node)
            started.append(node)
        for node in started:
            node.wait_listening()
        return started

    def alive(self) -> list[Served]:
        return [n for n in self.nodes if n.proc.poll() is None]

    def wait_nodes(self, count: int, timeout: float = 15) -> None:
        """Until every live node's /readyz counts `count` nodes on the bus."""
        deadline = time.monotonic() + timeout
        while True:
            seen = [readyz(n)[1]["bus"]["nodes"] for n in self.alive()]
            if all(s == count for s in seen):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes see {seen} nodes on the bus, not {count}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def readyz(node: Served) -> tuple[int, dict[str, Any]]:
    status, body = node.call("GET", "/readyz")
    assert isinstance(body, dict), body
    return status, body


@contextmanager
def cluster_on(tmp: Path, redis_url: str, prefix: str, **env: str) -> Iterator[Cluster]:
    """A cluster with no node started yet; every node killed and the schema dropped after."""
    database_url, schema = postgres_url_with_fresh_schema()
    try:
        with s3_server() as storage_url:
            cluster = Cluster(tmp / "data", database_url, redis_url, storage_url, prefix, **env)
            try:
                yield cluster
            finally:
                cluster.stop()
    finally:
        drop_schema(schema)


def shared_redis() -> str:
    require("redis", REDIS_URL, 6379)
    return REDIS_URL


