"""Planning: from a shopper's profile, an abandoned cart and the store policy to a plan.

:func:`plan_recovery` values the cart in the store's currency (or rejects it), picks the band
and the segment, decides the holdout, and lays out the band's sequence as refined by the
segment, each touch with its due time, resolved incentive and reason. Pure: ``now`` is given.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from recovery.fast_constructors import fast_constructor
from recovery.holdout import in_holdout
from recovery.ids import touch_ids
from recovery.incentives import resolve
from recovery.model import Cart, Plan, PlannedTouch, Profile
from recovery.policy import StorePolicy
from recovery.policy_tables import BandTable, compile_policy
from recovery.segments import segment_of
from recovery.valuation import CENT, CurrencyMismatch, Valuation, margin, valuate

_SUMMARY_ITEMS = 5
_planned_touch = fast_constructor(PlannedTouch)  # positional: fields in declaration order
_plan = fast_constructor(Plan)


def cart_summary(cart: Cart, value: str, band: str, segment: str) -> str:
    """A one-line summary of the cart for the person who follows up."""
    items = ", ".join(
        f"{item.quantity}x {item.title} @ {item.price}" for item in cart.items[:_SUMMARY_ITEMS]
    )
    more = len(cart.items) - _SUMMARY_ITEMS
    if more > 0:
        items += f", +{more} more"
    text = f"{band} cart {value}, segment {segment}; {len(cart.items)} line(s): {items or '-'}"
    if cart.recovery_url:
        text += f"; recovery link {cart.recovery_url}"
    return text


def _shipping(cart: Cart, valued: Valuation) -> Decimal | None:
    """The cart's shipping charge in the store's currency, when it reported one."""
    if cart.shipping is None or cart.shipping < 0:
        return None
    return (cart.shipping * valued.factor).quantize(CENT, rounding=ROUND_HALF_EVEN)


def plan_recovery(
    profile: Profile,
    cart: Cart,
    shopper: str,
    policy: StorePolicy,
    now: datetime,
    version: int = 1,
) -> Plan:
    """The plan for ``cart``: band, segment, holdout and touches, each decision with a reason.

    Touch ids are ``touch_id(store, shopper, cart, version, step)`` with ``step`` the 1-based
    position in the band's sequence (a step the segment drops leaves a gap, so ids never
    shift). A holdout plan and a rejected plan have no touches.
    """
    try:
        valued = valuate(cart, policy)
    except CurrencyMismatch as exc:
        return Plan(
            store=cart.store, shopper=shopper, cart=cart.checkout, band="", segment="",
            version=version, touches=(), reasons=(str(exc),), rejected=str(exc),
            value=cart.total, currency=cart.currency, abandoned_at=cart.abandoned_at,
        )  # fmt: skip
    tables = compile_policy(policy)
    table = tables.band_for(valued.value)
    band = table.band
    segment, segment_reason = segment_of(profile, cart, policy, now)
    held, holdout_reason = in_holdout(
        cart.store, shopper, cart.checkout, band.holdout, table.holdout_threshold
    )
    reasons = [
        valued.reason,
        f"band: {band.name} ({valued.value} {valued.currency} >= {band.min})",
        segment_reason,
        holdout_reason,
    ]
    touches: list[PlannedTouch] = []
    if not held:
        touches = _touches(cart, shopper, policy, version, table, segment, valued, reasons)
    return _plan(
        store=cart.store, shopper=shopper, cart=cart.checkout, band=band.name, segment=segment,
        version=version, touches=tuple(touches), reasons=tuple(reasons), holdout=held,
        value=valued.value, currency=valued.currency, abandoned_at=cart.abandoned_at,
    )  # fmt: skip


def _touches(
    cart: Cart,
    shopper: str,
    policy: StorePolicy,
    version: int,
    table: BandTable,
    segment: str,
    valued: Valuation,
    reasons: list[str],
) -> list[PlannedTouch]:
    """The band's steps as refined by the segment; appends skipped steps to ``reasons``."""
    band = table.band
    value = valued.value
    reasons.extend(table.skipped[segment])
    rule = policy.segments.rule(segment)
    steps = table.steps[segment]
    ids = touch_ids(cart.store, shopper, cart.checkout, version, len(band.sequence))
    abandoned = cart.abandoned_at
    cart_margin: Decimal | None = None
    margin_source = ""
    human: str | None = None
    touches = []
    for entry in steps:
        why = entry.why
        kind = amount = service = validity = withheld = cost = None
        if entry.incentive is not None:
            if cart_margin is None:
                cart_margin, margin_source = margin(cart, valued, policy)
            offer = resolve(
                entry.incentive,
                low_band=table.low,
                rule=rule,
                segment=segment,
                amount=value,
                margin=cart_margin,
                margin_source=margin_source,
                policy=policy,
                shipping=_shipping(cart, valued),
            )
            kind, amount, service = offer.kind, offer.value, offer.service
            validity, withheld, cost = offer.validity_s, offer.withheld, offer.cost
            if offer.reason:
                why += f"; {offer.reason}"
            if withheld:
                why += f"; withheld {withheld}"
        summary = None
        if entry.channel == "human":
            money = f"{value} {policy.currency}"
            if human is None:
                human = cart_summary(cart, money, band.name, segment)
            summary = human
            why += f"; follow up by a person: {band.name} band {money}, segment {segment}"
        touch = _planned_touch(
            ids[entry.step - 1], entry.step, entry.channel, entry.template,
            abandoned + entry.offset, kind, amount, service, validity, withheld, cost,
            why, summary,
        )  # fmt: skip
        touches.append(touch)
    return touches
