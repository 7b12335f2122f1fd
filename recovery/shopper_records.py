"""What stage B reads of a ``shopper-events`` record: the record typed once at the stage's edge
(:mod:`schemas.shopper_events`), then its times and the fields a transition relies on, checked.
A record may come from elsewhere than stage A (a replay, another producer): what cannot be
taken raises :class:`recovery.checkouts.BadEvent` naming the field, and the shell dead-letters
the record.
"""

from __future__ import annotations

from typing import Any

from recovery.checkouts import BadEvent, check_amounts, epoch
from recovery.redemption import BadDiscount, order_discounts
from schemas.shopper_events import (
    AnyShopperEvent,
    BadShopperEvent,
    CartAbandoned,
    CartConverted,
    read_shopper_event,
)


def shopper_event(record: Any) -> AnyShopperEvent:
    """``record`` (decoded JSON) typed, or BadEvent naming the field at fault."""
    try:
        return read_shopper_event(record)
    except BadShopperEvent as bad:
        raise BadEvent(str(bad)) from None


def record_time(record: AnyShopperEvent) -> float:
    """The record's own time (``occurred_at``)."""
    return epoch(record.occurred_at, "occurred_at")


def given_at(record: AnyShopperEvent) -> float:
    """When the shopper gave what ``record`` carries: for an abandonment, the cart's last
    update (the tick that abandons it stamps the record later); else the record's own time."""
    if isinstance(record, CartAbandoned):
        occurred = record.cart.get("occurred_at")
        if occurred is not None:
            try:
                return epoch(occurred, "cart.occurred_at")
            except BadEvent:
                pass  # not stage A's (it validated the event): the abandonment's own time
        return abandoned_at(record)
    stamp = record.sk
    return stamp[0] if stamp is not None else record_time(record)


def abandoned_at(record: CartAbandoned) -> float:
    return epoch(record.abandoned_at or record.occurred_at, "abandoned_at")


def order_key(record: AnyShopperEvent) -> tuple[float, int] | None:
    """Stage A's time of a record (``sk``, recovery.checkouts), or None if it has none."""
    stamp = record.sk
    return None if stamp is None else (float(stamp[0]), int(stamp[1]))


def abandonment_of(record: CartAbandoned) -> tuple[float, str, int, dict[str, Any]]:
    """The fields of a ``cart_abandoned`` stage B relies on: ``(abandoned_at, checkout,
    cycle, cart)``; BadEvent names the one it cannot take (its cart's amounts included)."""
    at = abandoned_at(record)
    check_amounts(record.cart, "cart.")
    return at, record.checkout, record.cycle, record.cart


def used_discounts(record: CartConverted) -> list[dict[str, str]]:
    """The codes a ``cart_converted`` used (stage A checked them; a record from elsewhere may
    carry anything: BadEvent, and the shell dead-letters it)."""
    try:
        return order_discounts(
            {"discounts": record.discounts, "discount_codes": record.discount_codes}
        )
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
