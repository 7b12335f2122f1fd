"""What stage B writes to ``recoveries`` for the ledger (pure): a ``plan`` record per
abandoned cart, its attribution window, and the net margin of a recovered order.

recovery.ledger folds these records (with the senders' touch results) into one outcome per
abandoned cart; README, "The ledger's records", documents their fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from recovery.checkouts import iso
from recovery.model import Plan
from recovery.policy import StorePolicy
from recovery.valuation import CENT


def window_end(plan: Plan, policy: StorePolicy) -> float:
    """Until when an order counts as recovered by ``plan``, in the ledger: the band's last
    scheduled touch plus the attribution window, from the abandonment. The same for both
    groups (a holdout plan has no touches, yet its window is the one its touches would have
    had), so the two recovery rates compare like with like."""
    assert plan.abandoned_at is not None  # every plan stage B makes has its abandonment
    span = 0.0
    if plan.band and plan.rejected is None:
        sequence = policy.band_named(plan.band).sequence
        span = max((t.offset.total_seconds() for t in sequence), default=0.0)
    return plan.abandoned_at.timestamp() + span + policy.attribution_window.total_seconds()


def plan_record(plan: Plan, policy: StorePolicy, kept: Plan | None = None) -> dict[str, Any]:
    """The ``plan`` record of an abandoned cart: what the ledger accounts every abandoned cart
    by, whether or not it is ever ordered (see recovery.ledger). ``kept``: the shopper's plan
    that stays in force instead (one sequence per shopper): ``plan`` was passed over, none of
    its touches go out, and the record names the plan that covers the shopper."""
    assert plan.abandoned_at is not None
    record: dict[str, Any] = {
        "type": "plan",
        "store": plan.store,
        "shopper": plan.shopper,
        "checkout": plan.cart,
        "cycle": plan.version,
        "band": plan.band,
        "segment": plan.segment,
        "group": "holdout" if plan.holdout else "treated",
        "rejected": plan.rejected,
        "value": str(plan.value),
        "currency": plan.currency,
        "abandoned_at": iso(plan.abandoned_at.timestamp()),
        "window_end": iso(window_end(plan, policy)),
        "touches": [
            {"touch_id": t.touch_id, "step": t.step, "channel": t.channel}
            for t in (plan.touches if kept is None else ())
        ],
    }
    if kept is not None:
        record["passed_over"] = {"checkout": kept.cart, "cycle": kept.version}
    return record


def recovered_margin(revenue: Decimal, discount: Decimal, policy: StorePolicy) -> Decimal:
    """Net margin of a recovered order: the store's gross margin on it, less the discount."""
    return (revenue * policy.margin.gross_margin - discount).quantize(CENT)
