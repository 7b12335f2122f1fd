"""A shopper's history in stage B's state: the profile (``pr``) that plans and decisions read,
and the abandonments already taken in (``ak``, ``af``), which make a repeated one a duplicate.

The state's layout is :mod:`recovery.shopper_state`'s; these functions read, and set fields of,
a copy the transition made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from recovery.model import Profile
from recovery.money import bounded_amount
from recovery.shopper_state import PlanningProfile, ShopperState, StoredProfile

HISTORY_WINDOW = 90 * 86400  # abandonments kept for the hesitant segment
SENDS_WINDOW = 7 * 86400  # sends kept for caps and per-channel gaps
MAX_ABANDONMENTS = 20
MAX_CONVERTED = 8


def utc_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def decimal_amount(value: Any, default: str = "0") -> Decimal:
    """A stored amount; ``default`` where it is missing or unreadable."""
    try:
        return bounded_amount(value if value is not None else default)
    except ValueError:
        return Decimal(default)


def new_state(partition: int) -> ShopperState:
    return ShopperState(pt=partition, pr=StoredProfile())


def profile_of(state: ShopperState, planning: PlanningProfile | None = None) -> Profile:
    pr = state.pr or StoredProfile()
    base: PlanningProfile | StoredProfile = planning or pr
    return Profile(
        orders_count=base.oc,
        lifetime_value=decimal_amount(base.ltv),
        last_order_at=utc_datetime(pr.lo) if pr.lo else None,
        email_consent=pr.ec,
        sms_consent=pr.sc,
        suppressed=frozenset(pr.sup),
        suppressed_numbers=frozenset(pr.sn),
        abandonments=tuple(utc_datetime(t) for t in base.ab),
        sends=tuple((ch, utc_datetime(t)) for ch, t in pr.se),
        discount_orders=base.dc,
    )


def prune_history(pr: StoredProfile, now: float) -> None:
    """Drop history older than its window."""
    pr.ab = [t for t in pr.ab if t >= now - HISTORY_WINDOW][-MAX_ABANDONMENTS:]
    pr.se = [s for s in pr.se if s[1] >= now - SENDS_WINDOW]


def merge_history(pr: StoredProfile, history: Any) -> None:
    """Fold the platform's order history of the customer into the profile.

    The platform's count and total cover orders from before cartbands saw the shopper; the
    orders seen in the stream since are in them too once the platform catches up, so the larger
    of the two figures is kept, never their sum.
    """
    if not isinstance(history, dict):
        return
    try:
        orders = int(history.get("orders_count") or 0)
    except (TypeError, ValueError):
        orders = 0
    pr.oc = max(pr.oc, orders)
    pr.ltv = str(max(decimal_amount(pr.ltv), decimal_amount(history.get("total_spent"))))


def known_abandonment(state: ShopperState, checkout: str, cycle: int, at: float) -> bool:
    """Whether the abandonment ``(checkout, cycle)`` was taken in already (or a later cycle of
    the same checkout was), or is older than what the shopper's row still remembers."""
    for seen in (state.pl, state.lp):
        if seen is not None and seen.ck == checkout and seen.cy >= cycle:
            return True
    if any(ck == checkout and cy >= cycle for ck, cy, _ in state.ak):
        return True
    floor = state.af
    return floor is not None and at <= floor


def remember_abandonment(st: ShopperState, checkout: str, cycle: int, at: float) -> None:
    """Add ``(checkout, cycle)`` to the abandonments seen; keep those of the history window,
    at most MAX_ABANDONMENTS, and raise the floor (``af``) to the newest one dropped."""
    seen = [*st.ak, (checkout, cycle, at)]
    kept = [s for s in seen if s[2] >= at - HISTORY_WINDOW][-MAX_ABANDONMENTS:]
    dropped = [s[2] for s in seen if s not in kept]
    if dropped:
        st.af = max(st.af or dropped[0], *dropped)
    st.ak = kept
