"""Prometheus metrics, in a registry of this app's own (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "lucky_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry)
        self.http_seconds = Histogram(
            "lucky_http_request_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.users = Gauge("lucky_users", "Registered accounts", registry=self.registry)
        self.db_batches = Gauge("lucky_db_write_batches", "Write batches committed (SQLite)",
                                registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
