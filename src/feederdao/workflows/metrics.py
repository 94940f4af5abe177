"""Prometheus metrics of one service instance (its own registry, so tests can run many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "feederdao_http_request_seconds",
            "API request latency by route and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.bids = Counter(
            "feederdao_bids_total",
            "Bid submissions by outcome (accepted, replayed, rejected)",
            ["outcome", "auth"],
            registry=self.registry,
        )
        self.steps = Counter(
            "feederdao_operator_steps_total",
            "Operator loop step attempts by step and status (ok, failed, escalated)",
            ["step", "status"],
            registry=self.registry,
        )
        self.clearing_seconds = Histogram(
            "feederdao_clearing_seconds",
            "Wall time of one interval's clearing",
            registry=self.registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
