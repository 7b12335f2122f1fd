"""Turn what the core decided into Prometheus counts (telemetry.metrics), in the shell.

The pure transitions of :mod:`recovery.checkouts` and :mod:`recovery.shoppers` return their
effects and outputs; the agents hand them here after acting on them, so metrics never change
what the pipeline does and the core never imports prometheus.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from recovery import shoppers as stage_b
from recovery.checkout_stage import EventsRead
from recovery.checkouts import Effect
from telemetry import decisions, metrics


def events_read(seen: EventsRead) -> None:
    """The cart events stage A took in, counted by platform and type as sent
    (:func:`recovery.checkout_stage.event_label`): once per window rather than once per event."""
    for (platform, kind), count in seen.items():
        metrics.event_in(platform, kind, count)


def cart_effects(effects: Iterable[Effect]) -> None:
    for effect in effects:
        if effect.kind == "duplicate":
            metrics.event_rejected("duplicate")
        elif effect.kind == "stale":
            metrics.event_rejected("stale")


def cart_event_refused(reason: str, *, malformed: bool) -> None:
    """A record stage A sent to its DLQ: malformed (labelled by the field at fault), or one
    that failed in our own code (``internal_error``)."""
    if malformed:
        metrics.event_rejected("malformed")
        metrics.dead_lettered("cart_events", reason.split(":", 1)[0].strip().replace(" ", "_"))
    else:
        metrics.dead_lettered("cart_events", "internal_error")


def stored_rows_unreadable(count: int) -> None:
    """Rows of a stage's table left out of a pass and dead-lettered (recovery.stored_rows)."""
    for _ in range(count):
        metrics.dead_lettered("cart_events", "stored_state")


def timers_fired(stage: metrics.TimerStage, pending: int, fired: list[float], now: float) -> None:
    """The backlog after a tick, and how late (against ``now``) the latest fired timer was."""
    late = max((now - due for due in fired), default=0.0)
    metrics.timers(stage, pending, late)


def shopper_outputs(out: stage_b.Outputs, bands: Collection[str]) -> None:
    """Count what stage B decided; ``bands``: the store's band names, bounding that label."""
    for plan in out.planned:
        decisions.log_plan(plan)
        group: metrics.Group = "holdout" if plan.holdout else "treated"
        metrics.cart_abandoned(plan.store, plan.band, plan.segment, group)
        if not plan.holdout and not plan.rejected:
            for touch in plan.touches:
                metrics.touch_planned(touch.channel, plan.band)
    for emission in out.touches:
        metrics.touch_emitted(emission.touch.channel, emission.plan.band)
    for what, reason, channel in out.counts:
        if what == "deferred":
            metrics.touch_deferred(channel, reason)
        elif what == "suppressed":
            metrics.touch_suppressed(channel, reason)
    for recovery in out.recoveries:
        recovered(recovery, bands)


def recovered(record: dict[str, Any], bands: Collection[str]) -> None:
    store = str(record.get("store") or "")
    currency = str(record.get("currency") or "")
    group: metrics.Group = "holdout" if record.get("holdout") else "treated"
    metrics.cart_converted(store, str(record.get("band") or ""), group)
    revenue, margin, discount = (
        _decimal(record.get(name)) for name in ("revenue", "margin", "discount")
    )
    band = metrics.band_label(record.get("band"), bands)
    metrics.recovery(store, currency, group, revenue, margin, band=band)
    if discount > 0:
        metrics.discount_spent(store, currency, discount, band=band)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)
