"""A small built-in sample of carts across every default band, for ``cartbands run``.

Deterministic: the same carts, ids and event times on every run, so the run is a replay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

SAMPLE_STORE = "demo"
SAMPLE_START = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)

# (checkout, total, first name, sms consent, items)
_CARTS: tuple[tuple[str, str, str, bool, tuple[tuple[str, int, str], ...]], ...] = (
    ("chk-low-1", "18.50", "Ada", False, (("Enamel mug", 1, "18.50"),)),
    ("chk-low-2", "42.00", "Ben", True, (("Tea sampler", 2, "21.00"),)),
    ("chk-mid-1", "75.00", "Cleo", True, (("Linen apron", 1, "75.00"),)),
    ("chk-mid-2", "120.00", "Dev", False, (("Chef knife", 1, "120.00"),)),
    ("chk-mid-3", "199.99", "Eli", True, (("Dutch oven", 1, "199.99"),)),
    ("chk-high-1", "310.00", "Fay", True, (("Espresso grinder", 1, "310.00"),)),
    ("chk-high-2", "540.00", "Gus", False, (("Stand mixer", 1, "540.00"),)),
    ("chk-vip-1", "900.00", "Hana", True, (("Espresso machine", 1, "900.00"),)),
    ("chk-vip-2", "1400.00", "Ivo", True, (("Range hood", 1, "1400.00"),)),
)


# Shoppers with a past: (checkout, total, first name, sms consent, item, (orders, spent)).
# Kai's platform history makes him a repeat_vip (a gentle reminder, no discount), Lou has
# ordered once (returning).
_KNOWN: tuple[tuple[str, str, str, bool, tuple[str, int, str], tuple[int, str]], ...] = (
    ("chk-high-3", "420.00", "Kai", True, ("Copper pan set", 1, "420.00"), (6, "2400.00")),
    ("chk-mid-4", "95.00", "Lou", True, ("Knife roll", 1, "95.00"), (1, "60.00")),
)

# Mia left three carts in the weeks before (days before the start), so her fourth makes her
# a hesitant shopper: social proof rather than another reminder.
_HESITANT = ("Mia", ((20, "34.00"), (12, "58.00"), (6, "27.00")), "165.00")

# Noor drops the pricier item from her cart before she leaves it: a cart shrunk below its
# peak makes her price_sensitive, and her mid-band cart keeps its modest 10% on touch two.
_SHRUNK = ("chk-mid-5", "Noor", (("Cast-iron pan", 1, "80.00"), ("Dutch oven", 1, "180.00")))

# (checkout, hours after its cart event, a code of the store's own and what it took off):
# these shoppers come back and order; Gus uses a store-wide code cartbands did not issue.
_ORDERS: tuple[tuple[str, int, tuple[str, str] | None], ...] = (
    ("chk-mid-2", 5, None),
    ("chk-high-2", 30, ("welcome5", "27.00")),
)
# Hours after the discount touch: the shopper who comes back with the code it carried.
REDEEM_AFTER = 3


def _cart(
    checkout: str,
    total: str,
    name: str,
    sms: bool,
    items: tuple[tuple[str, int, str], ...],
    at: datetime,
    customer: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "cart_updated",
        "event_id": f"sample-{checkout}-1",
        "store": SAMPLE_STORE,
        "checkout": checkout,
        "platform": "generic",
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "currency": "USD",
        "total": total,
        "subtotal": total,
        "line_items": [
            {"title": title, "quantity": qty, "price": price} for title, qty, price in items
        ],
        "contact": {
            "email": f"{name.lower()}@example.com",
            "phone": "+12125550100" if sms else None,
            "sms_phone": "+12125550100" if sms else None,
            "first_name": name,
            "email_consent": True,
            "sms_consent": sms,
            "customer_id": customer or f"cust-{checkout}",
        },
        "shipping_address": {"country_code": "US", "province_code": "NY"},
        "recovery_url": f"https://demo.example.com/checkouts/{checkout}/recover",
    }


def sample_events(start: datetime = SAMPLE_START) -> list[dict[str, Any]]:
    """Canonical events for the sample carts (one minute apart, after the hesitant shopper's
    earlier carts), and two later orders."""
    events = [
        _cart(checkout, total, name, sms, items, start + timedelta(minutes=index))
        for index, (checkout, total, name, sms, items) in enumerate(_CARTS)
    ]
    for index, (checkout, total, name, sms, item, (orders, spent)) in enumerate(_KNOWN):
        at = start + timedelta(minutes=len(_CARTS) + index)
        event = _cart(checkout, total, name, sms, (item,), at)
        event["customer"] = {"orders_count": orders, "total_spent": spent}
        events.append(event)
    name, earlier, total = _HESITANT
    customer = f"cust-{name.lower()}"
    for days, amount in earlier:
        at = start - timedelta(days=days)
        checkout = f"chk-{name.lower()}-{days}d"
        events.append(
            _cart(checkout, amount, name, False, (("Gift card", 1, amount),), at, customer)
        )
    at = start + timedelta(minutes=len(_CARTS) + len(_KNOWN))
    events.append(
        _cart(
            f"chk-{name.lower()}", total, name, False, (("Pour-over kit", 1, total),), at, customer
        )
    )
    checkout, name, items = _SHRUNK
    at = start + timedelta(minutes=len(_CARTS) + len(_KNOWN) + 1)
    before = sum(Decimal(price) * qty for _, qty, price in items)
    events.append(_cart(checkout, str(before), name, True, items, at))
    shrunk = _cart(checkout, items[1][2], name, True, items[1:], at + timedelta(minutes=2))
    shrunk["event_id"] = f"sample-{checkout}-2"
    events.append(shrunk)
    by_checkout = {e["checkout"]: e for e in events}
    for checkout, hours, code in _ORDERS:
        cart = by_checkout[checkout]
        at = datetime.fromisoformat(str(cart["occurred_at"])) + timedelta(hours=hours)
        events.append(_order(cart, at, [code] if code else []))
    events.sort(key=lambda e: str(e["occurred_at"]))
    return events


def _order(cart: dict[str, Any], at: datetime, codes: list[tuple[str, str]]) -> dict[str, Any]:
    """The order of ``cart`` at ``at``, using ``codes`` (code, amount taken off)."""
    off = sum((Decimal(amount) for _, amount in codes), Decimal(0))
    order = {
        "type": "cart_completed",
        "event_id": f"sample-order-{cart['checkout']}",
        "store": SAMPLE_STORE,
        "checkout": cart["checkout"],
        "platform": "generic",
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "currency": "USD",
        "total": str(Decimal(cart["total"]) - off),
        "order_id": f"order-{cart['checkout']}",
        "contact": cart["contact"],
    }
    if codes:
        order["discounts"] = [{"code": code, "amount": amount} for code, amount in codes]
    return order


def redemption(events: list[dict[str, Any]], touches: list[dict[str, Any]]) -> dict[str, Any]:
    """The order of a shopper who comes back REDEEM_AFTER hours after the first touch that
    carried a price discount, typing its code in lower case: the discount it takes off is
    the code's percentage of the cart (``touches``: what the core emitted for ``events``)."""
    ordered = {e["checkout"] for e in events if e.get("type") == "cart_completed"}
    carts = {e["checkout"]: e for e in events if e.get("type", "cart_updated") == "cart_updated"}
    offers = sorted(
        (t["due_at"], t["cart"], t["incentive"])
        for t in touches
        if (t.get("incentive") or {}).get("code")
        and t["incentive"].get("kind") == "percent_off"
        and t["cart"] not in ordered
        and t["cart"] in carts
    )
    if not offers:
        raise ValueError("no touch of the sample carries a percent-off code to redeem")
    due, checkout, incentive = offers[0]
    cart = carts[checkout]
    off = (Decimal(cart["total"]) * Decimal(incentive["value"]) / 100).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN
    )
    at = datetime.fromisoformat(due.replace("Z", "+00:00")) + timedelta(hours=REDEEM_AFTER)
    return _order(cart, at, [(incentive["code"].lower(), str(off))])
