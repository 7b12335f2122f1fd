"""The pipeline's Prometheus metrics and the shared ones (deliveries, DLQ records, money).

Every metric is a module-level object in the default registry, so any process that imports
this module and calls ``telemetry.server.start_metrics_server`` exposes it. Call sites either
use the objects directly (``EVENTS_IN.labels(platform="shopify", type="cart_updated").inc()``)
or the typed helpers below, which bound label values and convert money at the boundary.

Labels are bounded on purpose: store, platform, type, reason, band, segment, group, channel,
outcome, stage, topic/partition. Never put a shopper, cart, checkout or touch id in a label.

Money counters are in the store's currency (labels ``store`` and ``currency``); callers pass
``Decimal`` amounts and the conversion to float happens here, at the metric boundary only.

Who calls what (once per record or decision, in the shell, never in the pure core):

- stage A (carts agent): ``event_in`` for every record read, then ``event_rejected`` for a
  duplicate, a stale update or a malformed record; ``processing("checkouts")`` around a message;
  ``timers("carts", ...)`` after each tick.
- stage B (shoppers agent): ``cart_abandoned`` once per abandoned cart with its experiment group
  (intent to treat: rejected plans count too), ``touch_planned`` per planned touch,
  ``touch_emitted`` / ``touch_suppressed`` / ``touch_deferred`` at the due-time re-check,
  ``cart_converted`` + ``recovery`` (+ ``discount_spent``) for an attributed order;
  ``timers("recovery", ...)`` after each tick.
- senders: ``delivery`` per outcome, ``dead_lettered("touches", ...)``, ``channel_cost``.
- gateway: its own ``cartbands_gateway_*`` metrics; ``dead_lettered("ingest", ...)`` if it
  serves the default registry too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, Final, Literal, get_args

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

log = logging.getLogger(__name__)

# No ``*_created`` series: they would double the series of every counter and Prometheus gets
# nothing from them in the text format (counter resets are detected without them).
disable_created_metrics()

RejectReason = Literal["duplicate", "stale", "malformed"]
Group = Literal["treated", "holdout"]
# The senders' outcomes (senders.outcomes.Outcome) plus ``retried`` for a transient failure.
DeliveryOutcome = Literal[
    "delivered", "deduplicated", "unknown", "retried", "failed", "dead_lettered", "suppressed",
    "expired",
]  # fmt: skip
Dlq = Literal["ingest", "cart_events", "touches"]
TimerStage = Literal["carts", "recovery"]

OTHER: Final = "other"
PLATFORMS: Final = ("shopify", "bigcommerce", "woocommerce", "generic")
REJECT_REASONS: Final[tuple[str, ...]] = get_args(RejectReason)
GROUPS: Final[tuple[str, ...]] = get_args(Group)
DELIVERY_OUTCOMES: Final[tuple[str, ...]] = get_args(DeliveryOutcome)
DLQS: Final[tuple[str, ...]] = get_args(Dlq)
TIMER_STAGES: Final[tuple[str, ...]] = get_args(TimerStage)

# Seconds: a table write is ~0.3 ms, a sender's provider call up to seconds.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# --- stage A: cart events -------------------------------------------------------------------
EVENTS_IN = Counter(
    "cartbands_events",
    "Cart and order events read by the carts agent (stage A), by source platform and type, "
    "including those then rejected (cartbands_events_rejected_total).",
    ["platform", "type"],
)
EVENTS_REJECTED = Counter(
    "cartbands_events_rejected",
    "Cart events dropped by the carts agent: duplicate delivery, stale update, malformed record.",
    ["reason"],
)
CARTS_ABANDONED = Counter(
    "cartbands_carts_abandoned",
    "Abandoned carts reaching stage B, by value band, shopper segment and experiment group "
    "(treated or holdout, counted whether or not a touch could be planned).",
    ["store", "band", "segment", "group"],
)
CARTS_CONVERTED = Counter(
    "cartbands_carts_converted",
    "Abandoned carts whose order arrived within the attribution window, by band and group "
    "(treated: touches were planned; holdout: deliberately left alone).",
    ["store", "band", "group"],
)

# --- stage B: touches -------------------------------------------------------------------------
TOUCHES_PLANNED = Counter(
    "cartbands_touches_planned", "Touches put in a recovery plan.", ["channel", "band"]
)
TOUCHES_EMITTED = Counter(
    "cartbands_touches_emitted",
    "Touch commands emitted onto a channel topic when due.",
    ["channel", "band"],
)
TOUCHES_SUPPRESSED = Counter(
    "cartbands_touches_suppressed",
    "Due touches dropped at the re-check (converted, no_consent, cap_reached, unsubscribed, "
    "redacted, no_contact, ...).",
    ["channel", "reason"],
)
TOUCHES_DEFERRED = Counter(
    "cartbands_touches_deferred",
    "Due touches moved later at the re-check (quiet_hours, ...).",
    ["channel", "reason"],
)

# --- senders (shared) -------------------------------------------------------------------------
DELIVERIES = Counter(
    "cartbands_deliveries",
    "Touch commands handled by the senders, by channel and outcome: delivered, deduplicated "
    "(touch id already delivered), unknown (provider answer lost), retried (transient failure, "
    "one count per retry), failed, dead_lettered, suppressed, expired (came too late).",
    ["channel", "outcome"],
)
DLQ_RECORDS = Counter(
    "cartbands_dlq_records",
    "Records written to a dead-letter topic, by DLQ (ingest, cart_events, touches) and reason.",
    ["dlq", "reason"],
)

# --- money (shared): store currency, fed from Decimal -----------------------------------------
RECOVERED_REVENUE = Counter(
    "cartbands_recovered_revenue",
    "Order revenue of converted abandoned carts, in the store currency, by experiment group "
    "and value band.",
    ["store", "currency", "group", "band"],
)
RECOVERED_MARGIN = Counter(
    "cartbands_recovered_margin",
    "Net margin (revenue - cost of goods - discount) of converted abandoned carts, in the "
    "store currency; losses go to cartbands_recovered_margin_loss_total.",
    ["store", "currency", "group", "band"],
)
RECOVERED_MARGIN_LOSS = Counter(
    "cartbands_recovered_margin_loss",
    "Absolute value of negative net margins of converted abandoned carts, store currency.",
    ["store", "currency", "group", "band"],
)
DISCOUNT_SPEND = Counter(
    "cartbands_discount_spend",
    "Discounts redeemed on recovered orders, in the store currency, by value band.",
    ["store", "currency", "band"],
)
CHANNEL_COST = Counter(
    "cartbands_channel_cost",
    "Cost of delivered touches (SMS, ads, human follow-up, ESP), in the store currency, by "
    "channel and value band.",
    ["store", "currency", "channel", "band"],
)

# --- runtime ----------------------------------------------------------------------------------
TIMERS_PENDING = Gauge(
    "cartbands_timers_pending",
    "Entities of this process's partitions waiting on a timer (carts: abandonment window; "
    "recovery: next due touch).",
    ["stage"],
)
TIMERS_OVERDUE = Gauge(
    "cartbands_timers_overdue_seconds",
    "How late the most overdue pending timer of this process is (0 when none is overdue).",
    ["stage"],
)
CONSUMER_LAG = Gauge(
    "cartbands_consumer_lag_messages",
    "Messages between the fetch high-water mark and the next offset to process, per assigned "
    "partition of this process.",
    ["topic", "partition"],
)
PROCESSING_SECONDS = Histogram(
    "cartbands_processing_seconds",
    "Wall time spent handling one record, by agent or service.",
    ["agent"],
    buckets=LATENCY_BUCKETS,
)

_LABEL_TEXT = re.compile(r"[a-z][a-z0-9_.-]{0,47}")


def _known(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


def _token(value: str | None) -> str:
    """A free-form label value (event type, reason) kept short and tame, else ``other``."""
    if value is None:
        return OTHER
    lowered = value.strip().lower()
    return lowered if _LABEL_TEXT.fullmatch(lowered) else OTHER


def _amount(value: Decimal, what: str) -> float | None:
    if not value.is_finite() or value < 0:
        log.warning("not counted: %s must be a finite amount >= 0, got %s", what, value)
        return None
    return float(value)


# --- helpers ----------------------------------------------------------------------------------
_EVENTS_IN_SEEN: dict[tuple[str | None, str | None], Any] = {}


def event_in(platform: str | None, type: str | None, count: int = 1) -> None:
    """``count`` cart/order events taken in by stage A; unknown platforms count as ``other``."""
    # Once per message and label: the labelled child is looked up once per (platform, type)
    # as sent.
    child = _EVENTS_IN_SEEN.get((platform, type))
    if child is None:
        child = EVENTS_IN.labels(platform=_known(platform or "", PLATFORMS), type=_token(type))
        if len(_EVENTS_IN_SEEN) < 256:
            _EVENTS_IN_SEEN[(platform, type)] = child
    child.inc(count)


def event_rejected(reason: RejectReason) -> None:
    EVENTS_REJECTED.labels(reason=_known(reason, REJECT_REASONS)).inc()


def cart_abandoned(store: str, band: str, segment: str, group: Group) -> None:
    CARTS_ABANDONED.labels(
        store=store, band=band, segment=_token(segment), group=_known(group, GROUPS)
    ).inc()


def cart_converted(store: str, band: str, group: Group) -> None:
    CARTS_CONVERTED.labels(store=store, band=band, group=_known(group, GROUPS)).inc()


def touch_planned(channel: str, band: str) -> None:
    TOUCHES_PLANNED.labels(channel=channel, band=band).inc()


def touch_emitted(channel: str, band: str) -> None:
    TOUCHES_EMITTED.labels(channel=channel, band=band).inc()


def touch_suppressed(channel: str, reason: str) -> None:
    TOUCHES_SUPPRESSED.labels(channel=channel, reason=_token(reason)).inc()


def touch_deferred(channel: str, reason: str) -> None:
    TOUCHES_DEFERRED.labels(channel=channel, reason=_token(reason)).inc()


def delivery(channel: str, outcome: DeliveryOutcome) -> None:
    DELIVERIES.labels(channel=channel, outcome=_known(outcome, DELIVERY_OUTCOMES)).inc()


def dead_lettered(dlq: Dlq, reason: str) -> None:
    DLQ_RECORDS.labels(dlq=_known(dlq, DLQS), reason=_token(reason)).inc()


def band_label(band: str | None, known: Collection[str]) -> str:
    """A ``band`` label value: one of the store's band names (``known``), else ``other``
    (a band from a record written under an older policy, or by something else)."""
    return band if band is not None and band in known else OTHER


def recovery(
    store: str, currency: str, group: Group, revenue: Decimal, margin: Decimal, *, band: str
) -> None:
    """Money of one converted abandoned cart; ``margin`` is net of cost of goods and discount.
    ``band`` is a bounded label value (:func:`band_label`)."""
    labels = {"store": store, "currency": currency, "group": _known(group, GROUPS), "band": band}
    amount = _amount(revenue, "recovered revenue")
    if amount is not None:
        RECOVERED_REVENUE.labels(**labels).inc(amount)
    if not margin.is_finite():
        log.warning("not counted: recovered margin must be finite, got %s", margin)
    elif margin >= 0:
        RECOVERED_MARGIN.labels(**labels).inc(float(margin))
    else:
        RECOVERED_MARGIN_LOSS.labels(**labels).inc(float(-margin))


def discount_spent(store: str, currency: str, amount: Decimal, *, band: str) -> None:
    value = _amount(amount, "discount spend")
    if value is not None:
        DISCOUNT_SPEND.labels(store=store, currency=currency, band=band).inc(value)


def channel_cost(store: str, currency: str, channel: str, amount: Decimal, *, band: str) -> None:
    value = _amount(amount, "channel cost")
    if value is not None:
        CHANNEL_COST.labels(store=store, currency=currency, channel=channel, band=band).inc(value)


def timers(stage: TimerStage, pending: int, overdue_seconds: float) -> None:
    """The timer backlog of this process's partitions, set after each tick."""
    stage_label = _known(stage, TIMER_STAGES)
    TIMERS_PENDING.labels(stage=stage_label).set(max(pending, 0))
    TIMERS_OVERDUE.labels(stage=stage_label).set(max(overdue_seconds, 0.0))


_PROCESSING_CHILDREN: dict[str, Any] = {}


def processing(agent: str) -> AbstractContextManager[Any]:
    """Time the handling of one record: ``with processing("carts"): ...``."""
    child = _PROCESSING_CHILDREN.get(agent)
    if child is None:
        child = _PROCESSING_CHILDREN[agent] = PROCESSING_SECONDS.labels(agent=agent)
    timer: AbstractContextManager[Any] = child.time()
    return timer
