"""WooCommerce order webhooks -> ``cart_completed`` (pure).

An order in a paid state (processing, completed, on-hold) is a conversion; other states
(pending, failed, cancelled...) stand for no record. The checkout it converts is the id the
store's cart plugin used for its cart events, read from the order meta entry named by the
policy (``checkout_meta_key``), else the order's ``cart_hash``, else ``order-<id>``.
WooCommerce's ``*_gmt`` times carry no offset and are UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.discounts import bounded, code_of, entry
from gateway.emit import Emit
from gateway.errors import missing_field
from gateway.fields import (
    as_list,
    as_object,
    child,
    drop_none,
    first_time,
    join,
    opt_money,
    opt_str,
    req_currency,
    req_money,
)
from recovery.ids import checkout_key

PAID_STATUSES = frozenset({"processing", "completed", "on-hold"})
PLATFORM = "woocommerce"


UNUSED_RESOURCES = frozenset({"customer", "product", "coupon"})


def is_order_topic(topic: str) -> bool:
    return topic.startswith("order.")


def is_unused_topic(topic: str) -> bool:
    """A core resource the gateway does not use (``product.updated``...): accepted and
    ignored, since WooCommerce disables a webhook after repeated failed deliveries."""
    return topic.partition(".")[0] in UNUSED_RESOURCES


def order_status(payload: Any) -> str | None:
    return opt_str(as_object(payload, ""), "status")


def checkout_of(order: Mapping[str, Any], meta_key: str, order_id: str) -> str:
    for index, raw in enumerate(as_list(order, "meta_data")):
        if not isinstance(raw, Mapping):
            continue
        if raw.get("key") == meta_key:
            value = opt_str(raw, "value", join("meta_data", index))
            if value:
                return value
    return opt_str(order, "cart_hash") or f"order-{order_id}"


def order_event(payload: Any, store: str, event_id: str, meta_key: str) -> Emit | None:
    """The conversion an order webhook stands for, or ``None`` for an unpaid order."""
    order = as_object(payload, "")
    status = opt_str(order, "status")
    if status is None:
        raise missing_field("status")
    order_id = opt_str(order, "id")
    if order_id is None:
        raise missing_field("id")
    if status not in PAID_STATUSES:
        return None
    checkout = checkout_of(order, meta_key, order_id)
    billing = child(order, "billing", "") or {}
    customer_id = opt_str(order, "customer_id")
    currency = req_currency(order, "currency")
    value = drop_none(
        {
            "type": "cart_completed",
            "store": store,
            "checkout": checkout,
            "event_id": event_id,
            "platform": PLATFORM,
            "occurred_at": first_time(
                order, ("date_paid_gmt", "date_modified_gmt", "date_created_gmt")
            ),
            "currency": currency,
            "total": req_money(order, "total", currency),
            "order_id": order_id,
            "contact": drop_none(
                {
                    "email": opt_str(billing, "email", "billing"),
                    "phone": opt_str(billing, "phone", "billing"),
                    "customer_id": customer_id if customer_id not in (None, "0") else None,
                    "first_name": opt_str(billing, "first_name", "billing"),
                }
            ),
            "discounts": coupon_discounts(order, currency),
        }
    )
    return Emit("cart_events", checkout_key(store, checkout), value)


def coupon_discounts(order: Mapping[str, Any], currency: str) -> list[dict[str, Any]]:
    """``coupon_lines: [{code, discount, discount_tax}]`` (REST API order properties) as
    canonical ``discounts``: what each coupon took off the order's total, its ``discount``
    plus its ``discount_tax`` (``total`` includes tax), in the order's currency; amount
    unknown when the line gives neither."""
    entries = []
    path = "coupon_lines"
    for index, raw in enumerate(bounded(as_list(order, path), path)):
        where = join(path, index)
        line = as_object(raw, where)
        code = code_of(line.get("code"), join(where, "code"))
        parts = [opt_money(line, key, currency, where) for key in ("discount", "discount_tax")]
        known = [part for part in parts if part is not None]
        entries.append(entry(code, sum(known, Decimal(0)) if known else None))
    return entries
