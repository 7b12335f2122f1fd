"""The gateway's Prometheus metrics, on a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "cartbands_gateway_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "cartbands_gateway_rejections",
            "Rejected requests by route and reason.",
            ["route", "reason"],
            registry=self.registry,
        )
        self.events = Counter(
            "cartbands_gateway_events",
            "Canonical records produced, by platform and record type.",
            ["platform", "type"],
            registry=self.registry,
        )
        self.ignored = Counter(
            "cartbands_gateway_ignored",
            "Accepted deliveries that stand for no record (pings, unpaid orders...).",
            ["route", "reason"],
            registry=self.registry,
        )
        self.dlq_failures = Counter(
            "cartbands_gateway_dlq_failures",
            "Rejections that could not be written to ingest-dlq (answered 503 instead).",
            registry=self.registry,
        )
        self.enrichment = Counter(
            "cartbands_gateway_enrichment_calls",
            "BigCommerce REST calls by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cartbands_gateway_request_seconds",
            "Time from request to response, by route.",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
