"""A shopper's history in stage B's state: the profile (``pr``) that plans and decisions read,
and the abandonments already taken in (``ak``, ``af``), which make a repeated one a duplicate.

The state's layout is described in :mod:`recovery.shoppers`; these functions read and change
its profile part in place, on a copy the transition made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from recovery.model import Profile
from recovery.money import bounded_amount

State = dict[str, Any]
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


def new_state(partition: int) -> State:
    return {"pt": partition, "seq": 0, "pr": {"oc": 0, "ltv": "0"}}


def profile_of(state: State, planning: dict[str, Any] | None = None) -> Profile:
    pr = state.get("pr") or {}
    base = planning or pr
    return Profile(
        orders_count=int(base.get("oc", 0)),
        lifetime_value=decimal_amount(base.get("ltv")),
        last_order_at=utc_datetime(pr["lo"]) if pr.get("lo") else None,
        email_consent=pr.get("ec"),
        sms_consent=pr.get("sc"),
        suppressed=frozenset(pr.get("sup", ())),
        suppressed_numbers=frozenset(pr.get("sn", ())),
        abandonments=tuple(utc_datetime(t) for t in base.get("ab", ())),
        sends=tuple((ch, utc_datetime(t)) for ch, t in pr.get("se", ())),
        discount_orders=int(base.get("dc", 0)),
    )


def prune_history(pr: dict[str, Any], now: float) -> None:
    """Drop history older than its window; an empty history is not stored at all."""
    recent = [t for t in pr.get("ab", ()) if t >= now - HISTORY_WINDOW][-MAX_ABANDONMENTS:]
    sends = [s for s in pr.get("se", ()) if s[1] >= now - SENDS_WINDOW]
    for name, kept in (("ab", recent), ("se", sends)):
        if kept:
            pr[name] = kept
        else:
            pr.pop(name, None)


def merge_history(pr: dict[str, Any], history: Any) -> None:
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
    pr["oc"] = max(int(pr.get("oc", 0)), orders)
    pr["ltv"] = str(max(decimal_amount(pr.get("ltv")), decimal_amount(history.get("total_spent"))))


def known_abandonment(state: State, checkout: str, cycle: int, at: float) -> bool:
    """Whether the abandonment ``(checkout, cycle)`` was taken in already (or a later cycle of
    the same checkout was), or is older than what the shopper's row still remembers."""
    for seen in (state.get("pl"), state.get("lp")):
        if seen and seen.get("ck") == checkout and int(seen.get("cy", 0)) >= cycle:
            return True
    if any(ck == checkout and cy >= cycle for ck, cy, _ in state.get("ak", ())):
        return True
    floor = state.get("af")
    return floor is not None and at <= floor


def remember_abandonment(st: State, checkout: str, cycle: int, at: float) -> None:
    """Add ``(checkout, cycle)`` to the abandonments seen; keep those of the history window,
    at most MAX_ABANDONMENTS, and raise the floor (``af``) to the newest one dropped."""
    seen = [*st.get("ak", ()), [checkout, cycle, at]]
    kept = [s for s in seen if s[2] >= at - HISTORY_WINDOW][-MAX_ABANDONMENTS:]
    dropped = [s[2] for s in seen if s not in kept]
    if dropped:
        st["af"] = max(st.get("af") or dropped[0], *dropped)
    st["ak"] = kept
