"""Incentives: what a touch may offer after the segment rule and the margin guard.

Costs are in the store's currency: percent-off is that share of the banded value, fixed-off
its amount (at most the value), free shipping the cart's shipping charge when it reported one
(else the store's ``shipping_cost``), a service perk
its ``service_costs`` entry (0 when not listed). An incentive costing more than
``max_discount_share_of_margin`` x the cart margin is withheld with the reason; the first
(low) band never carries one unless it sets ``allow_incentive`` (a flat baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from recovery.policy import Incentive, SegmentRule, StorePolicy

PRICE_KINDS = frozenset({"percent_off", "fixed_off", "free_shipping"})
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Offer:
    """The incentive a touch carries (``kind`` None when none or withheld) and why."""

    kind: str | None = None
    value: Decimal | None = None
    service: str | None = None
    validity_s: int | None = None
    cost: Decimal | None = None
    withheld: str | None = None
    reason: str = ""


NO_OFFER = Offer()


def cost_of(
    kind: str,
    value: Decimal | None,
    service: str | None,
    amount: Decimal,
    policy: StorePolicy,
    shipping: Decimal | None = None,
) -> Decimal:
    """What an incentive costs the store on a cart worth ``amount``; free shipping costs
    the cart's own ``shipping`` charge when it reported one, else the policy's estimate."""
    if kind == "percent_off":
        return (amount * (value or Decimal(0)) / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
    if kind == "fixed_off":
        return min(value or Decimal(0), max(amount, Decimal(0)))
    if kind == "free_shipping":
        return shipping if shipping is not None else policy.margin.shipping_cost
    return policy.margin.service_costs.get(service or "", Decimal(0))


def describe(kind: str, value: Decimal | None, service: str | None) -> str:
    if kind == "percent_off":
        return f"{value}% off"
    if kind == "fixed_off":
        return f"{value} off"
    if kind == "free_shipping":
        return "free shipping"
    return service or kind


def resolve(
    incentive: Incentive | None,
    *,
    low_band: bool,
    rule: SegmentRule,
    segment: str,
    amount: Decimal,
    margin: Decimal,
    margin_source: str,
    policy: StorePolicy,
    shipping: Decimal | None = None,
) -> Offer:
    """Apply the low-band rule, the segment rule and the margin guard to ``incentive``."""
    if incentive is None:
        return NO_OFFER
    kind, value, service = incentive.kind, incentive.value, incentive.service
    what = describe(kind, value, service)
    if low_band:
        return Offer(withheld=f"low_band: the first band never carries an incentive ({what})")
    if kind in PRICE_KINDS and not rule.discount:
        return Offer(withheld=f"segment: {segment} gets no price incentive ({what})")
    note = ""
    cap = rule.max_percent_off
    if kind == "percent_off" and cap is not None and value is not None and value > cap:
        note = f"; capped from {value}% to {cap}% for {segment}"
        value = cap
        what = describe(kind, value, service)
    cost = cost_of(kind, value, service, amount, policy, shipping)
    share = policy.margin.max_discount_share_of_margin
    limit = (margin * share).quantize(CENT, rounding=ROUND_HALF_EVEN)
    if cost > limit:
        return Offer(
            cost=cost,
            withheld=(
                f"margin: {what} costs {cost} > {share} x margin {margin} = {limit} "
                f"({margin_source})"
            ),
        )
    return Offer(
        kind=kind,
        value=value,
        service=service,
        validity_s=int(incentive.validity.total_seconds()),
        cost=cost,
        reason=f"incentive: {what}, costs {cost} <= {limit} allowed{note}",
    )
