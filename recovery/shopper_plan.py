"""A shopper's active plan in stage B's state (``pl``): the plan and its cart, re-derived from
the stored inputs, and when its next touch is due (``nd``).

The plan itself is not stored: :func:`recovery.plan.plan_recovery` is pure, so deriving it again
from the stored cart, profile and times gives the same touches, ids and times every time; a
cache keyed by those inputs spares most of the derivations.
"""

from __future__ import annotations

from typing import Any

from recovery.model import Cart, ContactInfo, Item, Plan, PlannedTouch
from recovery.plan import plan_recovery
from recovery.plan_cache import PlanCache
from recovery.policy import StorePolicy
from recovery.shopper_profile import decimal_amount, profile_of, utc_datetime
from recovery.shopper_state import PlanInputs, ShopperState
from recovery.stored_cart import unpack

# Snapshot fields a plan's cart does not keep: in the key and the plan already, or (the
# platform's order history) folded into the profile when the cart is abandoned.
PLAN_CART_DROP = frozenset({"store", "checkout", "occurred_at", "customer"})
# A plan depends on its stored inputs only (and the last order, read by the segment).
_plans = PlanCache()


def cart_of(
    snapshot: dict[str, Any], store: str, checkout: str, abandoned_at: float, cycle: int
) -> Cart:
    contact = snapshot.get("contact") or {}
    address = snapshot.get("shipping_address") or snapshot.get("billing_address") or {}
    return Cart(
        store=store,
        checkout=checkout,
        currency=snapshot.get("currency", ""),
        total=decimal_amount(snapshot.get("total")),
        subtotal=decimal_amount(snapshot["subtotal"])
        if snapshot.get("subtotal") is not None
        else None,
        shipping=decimal_amount(snapshot["shipping"])
        if snapshot.get("shipping") is not None
        else None,
        peak_total=(
            decimal_amount(snapshot["peak_total"])
            if snapshot.get("peak_total") is not None
            else None
        ),
        presentment_currency=snapshot.get("presentment_currency"),
        abandoned_at=utc_datetime(abandoned_at),
        items=tuple(
            Item(
                title=str(i.get("title", "")),
                quantity=int(i.get("quantity", 1)),
                price=decimal_amount(i.get("price")),
                cost=decimal_amount(i["cost"]) if i.get("cost") is not None else None,
                product_id=i.get("product_id"),
                variant_id=i.get("variant_id"),
                sku=i.get("sku"),
            )
            for i in snapshot.get("line_items", ())
            if isinstance(i, dict)
        ),
        contact=ContactInfo(
            email=contact.get("email"),
            phone=contact.get("phone"),
            sms_phone=contact.get("sms_phone"),
            customer_id=contact.get("customer_id"),
            first_name=contact.get("first_name"),
            email_consent=bool(contact.get("email_consent", False)),
            sms_consent=bool(contact.get("sms_consent", False)),
            locale=contact.get("locale"),
            country_code=address.get("country_code"),
            province_code=address.get("province_code"),
        ),
        recovery_url=snapshot.get("recovery_url"),
        cycle=cycle,
    )


def derive_plan(state: ShopperState, shopper: str, policy: StorePolicy) -> tuple[Plan, Cart] | None:
    """The active plan and its cart, re-derived from the plan inputs kept in ``state``."""
    pl = state.pl
    if pl is None:
        return None

    def derive() -> tuple[Plan, Cart]:
        snapshot = unpack(pl.c)
        cart = cart_of(snapshot, shopper.partition(":")[0], pl.ck, pl.at, pl.cy)
        profile = profile_of(state, pl.pp)
        plan = plan_recovery(profile, cart, shopper, policy, utc_datetime(pl.at), version=pl.cy)
        return plan, cart

    last_order = state.pr.lo if state.pr is not None else None
    return _plans.get(PlanCache.key(shopper, pl, last_order), policy, derive)


def remember_plan(
    shopper: str,
    inputs: PlanInputs,
    last_order: float | None,
    policy: StorePolicy,
    derived: tuple[Plan, Cart],
) -> None:
    """``derived`` is the plan and cart of the plan inputs ``inputs``: :func:`derive_plan`
    finds them without deriving them again."""
    _plans.put(PlanCache.key(shopper, inputs, last_order), policy, derived)


def effective_due(pl: PlanInputs, touch: PlannedTouch) -> float:
    """When ``touch`` of the plan inputs ``pl`` is due: deferred, or as its plan says."""
    deferred = pl.due.get(str(touch.step))
    return float(deferred) if deferred is not None else touch.due_at.timestamp()


def next_due(state: ShopperState, shopper: str, policy: StorePolicy) -> float | None:
    derived = derive_plan(state, shopper, policy)
    if derived is None or state.pl is None:
        return None
    plan, _ = derived
    pl = state.pl
    dues = [effective_due(pl, t) for t in plan.touches if str(t.step) not in pl.done]
    return min(dues) if dues else None


def bump(state: ShopperState, shopper: str, policy: StorePolicy) -> ShopperState:
    """``state`` changed: a new timer sequence, and its next due time again."""
    state.seq += 1
    state.nd = next_due(state, shopper, policy)
    return state


def plan_country(state: ShopperState) -> str | None:
    """The country of the active plan's cart address, to read a national phone number."""
    snapshot = unpack(state.pl.c if state.pl is not None and state.pl.c else {})
    address = snapshot.get("shipping_address") or snapshot.get("billing_address") or {}
    country = address.get("country_code") if isinstance(address, dict) else None
    return country if isinstance(country, str) and country else None
