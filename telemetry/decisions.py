"""One log line per abandoned cart: what the worker decided and why, with no contact data.

The line names the store, the cart (checkout id), the shopper by its hashed key, the banded
value, band and segment, then the plan (each touch as channel, offset from the abandonment
and incentive) or why there is none (holdout, rejected and the reason). Never an email, a
phone number or a name: a plan carries none of them, and only these fields are written.
Duck-typed on :class:`recovery.model.Plan` (telemetry imports no pipeline package).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger("cartbands.decisions")


def _offset(due: Any, start: Any) -> str:
    if not isinstance(due, datetime) or not isinstance(start, datetime):
        return ""
    seconds = max(int((due - start) / timedelta(seconds=1)), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"+{seconds // size}{unit}"
    return f"+{seconds}s"


def _touch(touch: Any, start: Any) -> str:
    text = f"{touch.channel}{_offset(touch.due_at, start)}"
    kind = getattr(touch, "incentive_kind", None)
    if kind:
        value = getattr(touch, "incentive_value", None)
        service = getattr(touch, "incentive_service", None)
        text += f"({kind} {service if kind == 'service' else value})"
    return text


def describe_plan(plan: Any) -> str:
    """The decision on one abandoned cart, as one line."""
    head = (
        f"abandoned cart {plan.cart} store={plan.store} shopper={plan.shopper} "
        f"value={plan.value} {plan.currency} band={plan.band} segment={plan.segment}"
    )
    if plan.rejected:
        return f"{head}: no plan, rejected ({plan.rejected})"
    if plan.holdout:
        return f"{head}: no plan, holdout (control group)"
    if not plan.touches:
        return f"{head}: no plan, the band's sequence is empty"
    touches = ", ".join(_touch(t, plan.abandoned_at) for t in plan.touches)
    return f"{head}: plan v{plan.version}, {len(plan.touches)} touches: {touches}"


def log_plan(plan: Any) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info("%s", describe_plan(plan))
