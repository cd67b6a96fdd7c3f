"""Prometheus metrics, in a registry of this app's own (no process-global state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class JobCounts:
    """One scheduled job's runs as job_runs records them (all nodes of the site together)."""

    name: str
    ok: int
    failed: int
    consecutive_failures: int
    last_success_ms: int | None


class JobRunsCollector(Collector):
    """Job metrics read from the database before each scrape: counters that every node of a
    site reports alike (they count the site's runs, not this node's)."""

    def __init__(self) -> None:
        self.jobs: list[JobCounts] = []

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily("lucky_job_runs", "Runs of each scheduled job by outcome (ok, failed)",
                                   labels=["job", "outcome"])
        success = GaugeMetricFamily("lucky_job_last_success_timestamp_seconds",
                                    "When each scheduled job last succeeded (absent: never)", labels=["job"])
        failures = GaugeMetricFamily("lucky_job_consecutive_failures",
                                     "Failed runs of each scheduled job since its last success", labels=["job"])
        for job in self.jobs:
            runs.add_metric([job.name, "ok"], job.ok)
            runs.add_metric([job.name, "failed"], job.failed)
            failures.add_metric([job.name], job.consecutive_failures)
            if job.last_success_ms is not None:
                success.add_metric([job.name], job.last_success_ms / 1000)
        yield runs
        yield success
        yield failures


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        self.http_requests = Counter(
            "lucky_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry)
        self.http_seconds = Histogram(
            "lucky_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.users = Gauge("lucky_users", "Registered accounts", registry=self.registry)
        self.send_seconds = Histogram(
            "lucky_send_seconds", "From a send frame's arrival to its durable `sent` reply",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1))
        self.connections = Gauge("lucky_ws_connections", "Open WebSocket connections on this node",
                                 registry=self.registry)
        self.online_users = Gauge("lucky_online_users", "Users with a connection on this node",
                                  registry=self.registry)
        self.messages_stored = Gauge("lucky_messages_stored", "Messages stored by this node since start",
                                     registry=self.registry)
        self.messages_dispatched = Gauge("lucky_messages_dispatched", "Messages dispatched since start",
                                         registry=self.registry)
        self.frames_pushed = Gauge("lucky_message_frames_pushed", "Message frames queued to devices since start",
                                   registry=self.registry)
        self.resent = Gauge("lucky_messages_resent", "Message frames pushed again for want of an ack",
                            registry=self.registry)
        self.send_queue = Gauge("lucky_send_queue_depth", "Sends waiting for the writer", registry=self.registry)
        self.outbox = Gauge("lucky_outbox_rows", "Rows waiting to go out, by kind (message: the outbox, push: "
                            "offline push deliveries) and state (pending, failed)", ["kind", "state"],
                            registry=self.registry)
        self.outbox_oldest = Gauge("lucky_outbox_oldest_pending_seconds",
                                   "Age of the oldest pending row, by kind (0: none pending)", ["kind"],
                                   registry=self.registry)
        self.db_batches = Gauge("lucky_db_write_batches", "Write batches committed (SQLite)",
                                registry=self.registry)

        self.jobs = JobRunsCollector()
        self.registry.register(self.jobs)

    async def refresh(self) -> None:
        """Let each feature set its gauges just before a scrape."""
        for refresh in self.refreshers:
            await refresh()

    def render(self) -> bytes:
        return generate_latest(self.registry)
