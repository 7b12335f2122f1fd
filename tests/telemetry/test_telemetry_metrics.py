"""The metric helpers, the /metrics server and the lag computation, without Prometheus."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from telemetry import metrics
from telemetry.lag import LagReporter, OffsetBook, partition_lag
from telemetry.server import serve_metrics, start_metrics_server


def value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def fresh_store() -> str:
    return f"store-{uuid4().hex[:8]}"


def test_money_is_counted_in_store_currency_from_decimal() -> None:
    store = fresh_store()
    metrics.recovery(store, "EUR", "treated", Decimal("119.90"), Decimal("31.25"), band="mid")
    metrics.recovery(store, "EUR", "treated", Decimal("20.10"), Decimal("-4.75"), band="mid")
    metrics.discount_spent(store, "EUR", Decimal("12.00"), band="mid")
    metrics.channel_cost(store, "EUR", "sms", Decimal("0.0075"), band="high")
    labels = {"store": store, "currency": "EUR", "group": "treated", "band": "mid"}
    assert value("cartbands_recovered_revenue_total", **labels) == pytest.approx(140.0)
    assert value("cartbands_recovered_margin_total", **labels) == pytest.approx(31.25)
    assert value("cartbands_recovered_margin_loss_total", **labels) == pytest.approx(4.75)
    assert value("cartbands_discount_spend_total", store=store, currency="EUR", band="mid") == 12
    cost = value(
        "cartbands_channel_cost_total", store=store, currency="EUR", channel="sms", band="high"
    )
    assert cost == pytest.approx(0.0075)


@pytest.mark.parametrize("bad", [Decimal("-1"), Decimal("NaN"), Decimal("Infinity")])
def test_bad_amounts_are_skipped_not_raised(bad: Decimal) -> None:
    store = fresh_store()
    metrics.discount_spent(store, "USD", bad, band="low")
    metrics.recovery(store, "USD", "treated", bad, Decimal("1"), band="low")
    assert value("cartbands_discount_spend_total", store=store, currency="USD", band="low") == 0
    labels = {"store": store, "currency": "USD", "group": "treated", "band": "low"}
    assert value("cartbands_recovered_revenue_total", **labels) == 0.0
    assert value("cartbands_recovered_margin_total", **labels) == 1.0


def test_label_values_stay_bounded() -> None:
    before_other = value("cartbands_events_total", platform="other", type="other")
    metrics.event_in("myspace", "DROP TABLE carts; --")
    metrics.event_in(None, None)
    assert value("cartbands_events_total", platform="other", type="other") == before_other + 2

    before = value("cartbands_events_total", platform="shopify", type="cart_updated")
    metrics.event_in("shopify", "Cart_Updated")
    assert value("cartbands_events_total", platform="shopify", type="cart_updated") == before + 1

    before_reason = value("cartbands_events_rejected_total", reason="other")
    metrics.event_rejected("forged")  # type: ignore[arg-type]
    assert value("cartbands_events_rejected_total", reason="other") == before_reason + 1

    long_reason = "x" * 200
    before_suppressed = value("cartbands_touches_suppressed_total", channel="sms", reason="other")
    metrics.touch_suppressed("sms", long_reason)
    after = value("cartbands_touches_suppressed_total", channel="sms", reason="other")
    assert after == before_suppressed + 1


def test_timers_and_processing_latency() -> None:
    metrics.timers("recovery", pending=42, overdue_seconds=-3.0)
    assert value("cartbands_timers_pending", stage="recovery") == 42
    assert value("cartbands_timers_overdue_seconds", stage="recovery") == 0.0
    before = value("cartbands_processing_seconds_count", agent="unit-test")
    with metrics.processing("unit-test"):
        pass
    assert value("cartbands_processing_seconds_count", agent="unit-test") == before + 1


def test_metrics_server_serves_the_default_registry_on_loopback() -> None:
    store = fresh_store()
    metrics.cart_abandoned(store, "vip", "returning", "holdout")
    with serve_metrics(0) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
    line = (
        f'cartbands_carts_abandoned_total{{band="vip",group="holdout",'
        f'segment="returning",store="{store}"}} 1.0'
    )
    assert line in body
    assert "process_cpu_seconds_total" in body or "python_info" in body


def test_start_metrics_server_returns_the_bound_port_and_fails_on_a_taken_one() -> None:
    registry = CollectorRegistry()
    Counter("only_here", "a metric of a private registry", registry=registry).inc()
    port = start_metrics_server(0, registry=registry)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b"only_here_total 1.0" in body
    with pytest.raises(OSError):
        start_metrics_server(port, registry=registry)
    with pytest.raises(ValueError):
        start_metrics_server(70000)


def test_partition_lag() -> None:
    assert partition_lag(100, read=89, committed=80) == 10
    assert partition_lag(100, read=None, committed=80) == 20
    assert partition_lag(100, read=50, committed=90) == 10  # re-reading after a rebalance
    assert partition_lag(100, read=99, committed=None) == 0
    assert partition_lag(None, read=3, committed=3) is None
    assert partition_lag(100, read=None, committed=None) is None


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, highwaters: dict[TP, int | None]) -> None:
        self.highwaters = highwaters

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: Any) -> int | None:
        if tp.partition == 99:
            raise AssertionError("Partition is not assigned")
        return self.highwaters[tp]


@dataclass
class Offsets:
    tp_read_offsets: dict[TP, int]
    tp_committed_offsets: dict[TP, int]


def test_lag_reporter_follows_the_assignment() -> None:
    topic = f"lag-{uuid4().hex[:6]}"
    a, b, gone = TP(topic, 0), TP(topic, 1), TP(topic, 99)
    changelog = TP(f"{topic}-checkouts-changelog", 0)
    reporter = LagReporter([topic])
    consumer = FakeConsumer({a: 120, b: None, gone: 5, changelog: 1000})
    offsets = Offsets({a: 99}, {a: 90, b: 7, changelog: 1})
    assert reporter.sample(consumer, offsets) == {(topic, 0): 20}
    assert value("cartbands_consumer_lag_messages", topic=topic, partition="0") == 20

    consumer.highwaters[b] = 17
    assert reporter.sample(consumer, offsets) == {(topic, 0): 20, (topic, 1): 10}

    del consumer.highwaters[a]  # partition 0 given to another worker: its gauge goes away
    reporter.sample(consumer, offsets)
    assert (
        REGISTRY.get_sample_value(
            "cartbands_consumer_lag_messages", {"topic": topic, "partition": "0"}
        )
        is None
    )
    assert value("cartbands_consumer_lag_messages", topic=topic, partition="1") == 10


def test_metric_names_do_not_collide_with_the_gateway_or_the_senders() -> None:
    """prometheus-client refuses a second metric of the same name in one registry."""
    from gateway.metrics import GatewayMetrics
    from senders import metrics as sender_metrics

    registry = CollectorRegistry()
    for module in (metrics, sender_metrics):
        for name in dir(module):
            collector = getattr(module, name)
            if isinstance(collector, Counter | Gauge | Histogram):
                registry.register(collector)
    GatewayMetrics(registry)
    names = {family.name for family in registry.collect()}
    assert {"cartbands_events", "cartbands_gateway_requests", "cartbands_sender_attempts"} <= names


def test_offset_book_feeds_the_reporter_for_plain_consumers() -> None:
    topic = f"book-{uuid4().hex[:6]}"
    tp = TP(topic, 3)
    book = OffsetBook()
    reporter = LagReporter([topic])
    consumer = FakeConsumer({tp: 50})
    assert reporter.sample(consumer, book) == {}  # nothing read or committed yet: unknown
    book.committed({tp: 10})
    assert reporter.sample(consumer, book) == {(topic, 3): 40}
    book.read(tp, 44)
    assert reporter.sample(consumer, book) == {(topic, 3): 5}


def test_every_sender_outcome_is_a_delivery_label() -> None:
    """The senders count ``Outcome.value``s; one missing here would be counted as ``other``."""
    from senders.outcomes import Outcome

    assert {outcome.value for outcome in Outcome} <= set(metrics.DELIVERY_OUTCOMES)


def test_a_band_label_is_one_of_the_store_s_bands_or_other() -> None:
    known = frozenset({"low", "mid", "high"})
    assert metrics.band_label("mid", known) == "mid"
    assert [metrics.band_label(b, known) for b in ("vip", "", None, "MID")] == ["other"] * 4
