"""What stage B reads of a ``shopper-events`` record: its type, its times and the fields a
transition relies on, checked. A record may come from elsewhere than stage A (a replay, another
producer): what cannot be taken raises :class:`recovery.checkouts.BadEvent` naming the field,
and the shell dead-letters the record.
"""

from __future__ import annotations

from typing import Any

from recovery.checkouts import BadEvent, check_amounts, epoch
from recovery.redemption import BadDiscount, order_discounts

# the records a shopper's transitions take (recovery.shoppers.apply_record)
RECORD_TYPES = frozenset(
    {
        "cart_abandoned",
        "cart_converted",
        "consent_changed",
        "shopper_redacted",
        "cart_reopened",
        "cart_emptied",
    }
)


def known_type(record: dict[str, Any]) -> str:
    """The type of ``record``, one of RECORD_TYPES."""
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in RECORD_TYPES:
        raise BadEvent(f"type: unknown shopper event type {kind!r}")
    return kind


def given_at(record: dict[str, Any]) -> float:
    """When the shopper gave what ``record`` carries: for an abandonment, the cart's last
    update (the tick that abandons it stamps the record later); else the record's own time."""
    if record.get("type") == "cart_abandoned":
        cart = record.get("cart")
        if isinstance(cart, dict) and cart.get("occurred_at") is not None:
            try:
                return epoch(cart["occurred_at"], "cart.occurred_at")
            except BadEvent:
                pass  # not stage A's (it validated the event): the abandonment's own time
        return epoch(record.get("abandoned_at") or record.get("occurred_at"), "abandoned_at")
    key = order_key(record)
    return key[0] if key is not None else epoch(record.get("occurred_at"), "occurred_at")


def order_key(record: dict[str, Any]) -> tuple[float, int] | None:
    """Stage A's time of a record (``sk``, recovery.checkouts), or None if it has none."""
    value = record.get("sk")
    if not isinstance(value, list) or len(value) != 2:
        return None
    at, phase = value
    if isinstance(at, bool) or not isinstance(at, int | float) or phase not in (0, 1):
        return None
    return float(at), int(phase)


def cycle_of(record: dict[str, Any]) -> int:
    """The abandonment cycle a record names (1 when it names none)."""
    value = record.get("cycle", 1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent("cycle: expected an integer")
    return value


def abandonment_of(record: dict[str, Any]) -> tuple[float, str, int, dict[str, Any]]:
    """The fields of a ``cart_abandoned`` stage B relies on: ``(abandoned_at, checkout,
    cycle, cart)``; BadEvent names the one it cannot take (a record may come from elsewhere
    than stage A: a replay, another producer)."""
    at = epoch(record.get("abandoned_at") or record.get("occurred_at"), "abandoned_at")
    cart = record.get("cart") or {}
    if not isinstance(cart, dict):
        raise BadEvent("cart: expected an object")
    check_amounts(cart, "cart.")
    return at, str(record.get("checkout")), cycle_of(record), cart


def used_discounts(record: dict[str, Any]) -> list[dict[str, str]]:
    """The codes a ``cart_converted`` used (stage A checked them; a record from elsewhere may
    carry anything: BadEvent, and the shell dead-letters it)."""
    try:
        return order_discounts(record)
    except BadDiscount as exc:
        raise BadEvent(str(exc)) from exc


def erased_by_store(record: dict[str, Any], key: str) -> bool:
    """Whether a ``store_redacted`` record erases the shopper stored under ``key``."""
    store = record.get("store")
    return (
        record.get("type") == "store_redacted"
        and isinstance(store, str)
        and key.startswith(f"{store}:")
    )
