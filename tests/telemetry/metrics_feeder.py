"""A fresh process serving telemetry's /metrics, fed with known amounts on request.

Protocol (line based): prints ``port N`` once serving with every series created at zero; on a
``feed`` line on stdin records FEED's amounts through the telemetry helpers and prints ``fed``;
exits at end of input. Run by test_telemetry_prometheus.py; a fresh process means every
counter starts at zero, so the rates Prometheus computes from it are exact.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from prometheus_client import REGISTRY

from gateway.metrics import GatewayMetrics
from senders import metrics as sender_metrics
from telemetry import metrics
from telemetry.lag import LagReporter
from telemetry.server import serve_metrics

STORE = "acme"
CURRENCY = "USD"
# The gateway keeps its metrics on a registry per app; here they share the default one, which
# also proves that no gateway metric name collides with telemetry's or the senders'.
GATEWAY = GatewayMetrics(REGISTRY)


def create_series() -> None:
    """Every labelled child the feed touches, at zero, so the first scrape is the baseline."""
    for group in metrics.GROUPS:
        for band in ("high", "low"):
            labels = {"store": STORE, "currency": CURRENCY, "group": group, "band": band}
            metrics.RECOVERED_REVENUE.labels(**labels)
            metrics.RECOVERED_MARGIN.labels(**labels)
            metrics.RECOVERED_MARGIN_LOSS.labels(**labels)
            metrics.CARTS_CONVERTED.labels(store=STORE, band=band, group=group)
            for segment in ("new", "returning"):
                metrics.CARTS_ABANDONED.labels(store=STORE, band=band, segment=segment, group=group)
    for band in ("high", "low"):
        metrics.DISCOUNT_SPEND.labels(store=STORE, currency=CURRENCY, band=band)
    for channel in ("email", "sms"):
        for band in ("high", "low"):
            metrics.CHANNEL_COST.labels(store=STORE, currency=CURRENCY, channel=channel, band=band)
        metrics.TOUCHES_PLANNED.labels(channel=channel, band="high")
        metrics.TOUCHES_EMITTED.labels(channel=channel, band="high")
        metrics.TOUCHES_SUPPRESSED.labels(channel=channel, reason="converted")
        metrics.TOUCHES_DEFERRED.labels(channel=channel, reason="quiet_hours")
        for outcome in ("delivered", "failed", "retried"):
            metrics.DELIVERIES.labels(channel=channel, outcome=outcome)
    metrics.EVENTS_IN.labels(platform="bigcommerce", type="cart_updated")
    metrics.EVENTS_IN.labels(platform="shopify", type="cart_completed")
    for reason in metrics.REJECT_REASONS:
        metrics.EVENTS_REJECTED.labels(reason=reason)
    metrics.DLQ_RECORDS.labels(dlq="touches", reason="bad_address")
    metrics.PROCESSING_SECONDS.labels(agent="carts")
    metrics.timers("carts", pending=0, overdue_seconds=0)
    metrics.timers("recovery", pending=0, overdue_seconds=0)
    GATEWAY.requests.labels(route="shopify", status="202")
    GATEWAY.rejections.labels(route="shopify", reason="bad_signature")
    GATEWAY.latency.labels(route="shopify")
    sender_metrics.ATTEMPTS.labels(channel="email", provider="smtp", result="ok")
    sender_metrics.LATENCY.labels(channel="email", provider="smtp")


def repeat(times: int, record: Callable[..., None], *args: Any) -> None:
    for _ in range(times):
        record(*args)


def feed() -> None:
    # money: treated net margin 120 - 10 = 110; spend 30 + 12.5 + 2.5 = 45
    metrics.recovery(STORE, CURRENCY, "treated", Decimal("300.00"), Decimal("120.00"), band="high")
    metrics.recovery(STORE, CURRENCY, "treated", Decimal("50.00"), Decimal("-10.00"), band="high")
    metrics.recovery(STORE, CURRENCY, "holdout", Decimal("80.00"), Decimal("30.00"), band="high")
    metrics.discount_spent(STORE, CURRENCY, Decimal("30.00"), band="high")
    metrics.channel_cost(STORE, CURRENCY, "sms", Decimal("12.50"), band="high")
    metrics.channel_cost(STORE, CURRENCY, "email", Decimal("2.50"), band="low")
    # carts: treated high 2 of 8 recovered, holdout high 1 of 8, low band none
    repeat(5, metrics.cart_abandoned, STORE, "high", "new", "treated")
    repeat(3, metrics.cart_abandoned, STORE, "high", "returning", "treated")
    repeat(8, metrics.cart_abandoned, STORE, "high", "new", "holdout")
    repeat(4, metrics.cart_abandoned, STORE, "low", "new", "treated")
    repeat(2, metrics.cart_converted, STORE, "high", "treated")
    repeat(1, metrics.cart_converted, STORE, "high", "holdout")
    # events: 10 in, 2 of them duplicates
    repeat(6, metrics.event_in, "bigcommerce", "cart_updated")
    repeat(4, metrics.event_in, "shopify", "cart_completed")
    repeat(2, metrics.event_rejected, "duplicate")
    repeat(1, metrics.event_rejected, "stale")
    repeat(1, metrics.event_rejected, "malformed")
    # touches and deliveries: email fails 2 of 10, sms never
    repeat(3, metrics.touch_planned, "email", "high")
    repeat(2, metrics.touch_planned, "sms", "high")
    repeat(2, metrics.touch_emitted, "email", "high")
    repeat(1, metrics.touch_suppressed, "sms", "converted")
    repeat(1, metrics.touch_deferred, "sms", "quiet_hours")
    repeat(8, metrics.delivery, "email", "delivered")
    repeat(2, metrics.delivery, "email", "failed")
    repeat(1, metrics.delivery, "sms", "delivered")
    repeat(3, metrics.delivery, "sms", "retried")
    repeat(2, metrics.dead_lettered, "touches", "bad_address")
    # runtime
    metrics.timers("recovery", pending=7, overdue_seconds=30.5)
    metrics.timers("carts", pending=3, overdue_seconds=0)
    LagReporter().report({("cart-events", 0): 42, ("cart-events", 1): 8})
    for _ in range(20):
        with metrics.processing("carts"):
            sum(range(1000))
    # the gateway's and the senders' own metrics, for their dashboard panels
    for _ in range(5):
        GATEWAY.requests.labels(route="shopify", status="202").inc()
        GATEWAY.latency.labels(route="shopify").observe(0.004)
        sender_metrics.ATTEMPTS.labels(channel="email", provider="smtp", result="ok").inc()
        sender_metrics.LATENCY.labels(channel="email", provider="smtp").observe(0.2)
    GATEWAY.rejections.labels(route="shopify", reason="bad_signature").inc()


def main() -> None:
    create_series()
    server = serve_metrics(0)
    print(f"port {server.port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "feed":
            feed()
            print("fed", flush=True)
    server.stop()


if __name__ == "__main__":
    main()
