"""Shopify webhooks -> canonical records (pure).

Topics: ``checkouts/create|update`` -> ``cart_updated``; ``orders/create|paid`` ->
``cart_completed`` (the checkout is the order's ``checkout_token``; an order without one, e.g.
from POS, gets ``order-<id>`` so the shopper's sequences still learn of the purchase);
``customers/redact`` -> ``shopper_redacted``; ``shop/redact`` -> ``store_redacted`` (to every
partition of both streams); ``customers/data_request`` -> an audit record on ``ingest-dlq``
(the gateway holds no data; an operator exports what the workers hold).

The checkout's identity is ``token`` (checkout webhooks carry no numeric id since 2026-04).
Money stays in the shop currency ``currency``; ``presentment_currency`` is kept beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.emit import Emit
from gateway.errors import Reject, bad_field, missing_field
from gateway.fields import (
    as_list,
    as_object,
    child,
    drop_none,
    first_time,
    join,
    opt_bool,
    opt_currency,
    opt_int,
    opt_money,
    opt_str,
    opt_time,
    req_currency,
    req_money,
    req_str,
)
from recovery.ids import checkout_key, shopper_key

CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})
ORDER_TOPICS = frozenset({"orders/create", "orders/paid"})
PRIVACY_TOPICS = frozenset({"customers/redact", "shop/redact", "customers/data_request"})
TOPICS = CHECKOUT_TOPICS | ORDER_TOPICS | PRIVACY_TOPICS

PLATFORM = "shopify"


def normalize(
    topic: str, payload: Any, store: str, event_id: str, received_at: datetime
) -> list[Emit]:
    """The records one Shopify webhook stands for; raises ``Reject`` on unusable input."""
    body = as_object(payload, "")
    if topic in CHECKOUT_TOPICS:
        return [checkout_event(body, store, event_id)]
    if topic in ORDER_TOPICS:
        return [order_event(body, store, event_id)]
    if topic == "customers/redact":
        return [customer_redaction(body, store, event_id, received_at)]
    if topic == "shop/redact":
        return shop_redaction(store, event_id, received_at)
    if topic == "customers/data_request":
        return [data_request(body, store, event_id, received_at)]
    raise Reject(400, "unsupported_topic", f"X-Shopify-Topic {topic[:80]!r} is not handled")


def checkout_event(body: Mapping[str, Any], store: str, event_id: str) -> Emit:
    token = req_str(body, "token")
    value = drop_none(
        {
            "type": "cart_updated",
            "store": store,
            "checkout": token,
            "event_id": event_id,
            "platform": PLATFORM,
            "occurred_at": first_time(body, ("updated_at", "created_at")),
            "currency": req_currency(body, "currency"),
            "total": req_money(body, "total_price"),
            "subtotal": opt_money(body, "subtotal_price"),
            "shipping": shipping_charge(body),
            "presentment_currency": opt_currency(body, "presentment_currency"),
            "presentment_total": _presentment_total(body),
            "line_items": line_items(body),
            "contact": contact(body),
            "customer": history(body),
            "shipping_address": address(body, "shipping_address"),
            "billing_address": address(body, "billing_address"),
            "recovery_url": opt_str(body, "abandoned_checkout_url"),
            "completed_at": opt_time(body, "completed_at"),
        }
    )
    return Emit("cart_events", checkout_key(store, token), value)


def order_event(body: Mapping[str, Any], store: str, event_id: str) -> Emit:
    order_id = opt_str(body, "id")
    checkout = opt_str(body, "checkout_token")
    if checkout is None:
        if order_id is None:
            raise missing_field("checkout_token")
        checkout = f"order-{order_id}"
    value = drop_none(
        {
            "type": "cart_completed",
            "store": store,
            "checkout": checkout,
            "event_id": event_id,
            "platform": PLATFORM,
            "occurred_at": first_time(body, ("processed_at", "created_at", "updated_at")),
            "currency": req_currency(body, "currency"),
            "total": req_money(body, "total_price"),
            "order_id": order_id,
            "contact": contact(body),
            "discount_codes": discount_codes(body),
        }
    )
    return Emit("cart_events", checkout_key(store, checkout), value)


def shipping_charge(body: Mapping[str, Any]) -> Decimal | None:
    """The shipping included in ``total_price``: the sum of ``shipping_lines[].price``, or
    ``None`` while no shipping line is chosen (unknown, not free)."""
    lines = as_list(body, "shipping_lines")
    if not lines:
        return None
    charge = Decimal("0")
    for index, raw in enumerate(lines):
        path = join("shipping_lines", index)
        charge += req_money(as_object(raw, path), "price", path)
    return charge


def _presentment_total(body: Mapping[str, Any]) -> Any:
    """``total_price_set.presentment_money.amount`` when the payload has it."""
    money_set = child(body, "total_price_set", "")
    if money_set is None:
        return None
    presentment = child(money_set, "presentment_money", "total_price_set")
    if presentment is None:
        return None
    return opt_money(presentment, "amount", "total_price_set.presentment_money")


def line_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = []
    for index, raw in enumerate(as_list(body, "line_items")):
        path = join("line_items", index)
        item = as_object(raw, path)
        quantity = opt_int(item, "quantity", path)
        if quantity is None:
            raise missing_field(join(path, "quantity"))
        if quantity < 0:
            raise bad_field(join(path, "quantity"), "must not be negative")
        items.append(
            drop_none(
                {
                    "title": opt_str(item, "title", path) or opt_str(item, "name", path) or "",
                    "quantity": quantity,
                    "price": req_money(item, "price", path),
                    "product_id": opt_str(item, "product_id", path),
                    "variant_id": opt_str(item, "variant_id", path),
                    "sku": opt_str(item, "sku", path),
                }
            )
        )
    return items


def _consent_state(customer: Mapping[str, Any] | None, key: str) -> str | None:
    if customer is None:
        return None
    consent = child(customer, key, "customer")
    if consent is None:
        return None
    return opt_str(consent, "state", f"customer.{key}")


def contact(body: Mapping[str, Any]) -> dict[str, Any]:
    """Reachability and consent. The customer's explicit consent state (``subscribed``) wins
    over the checkout's ``buyer_accepts_*`` box, which only counts when no state is known."""
    customer = child(body, "customer", "")
    email_state = _consent_state(customer, "email_marketing_consent")
    sms_state = _consent_state(customer, "sms_marketing_consent")
    email_consent = (
        email_state == "subscribed"
        if email_state is not None
        else bool(opt_bool(body, "buyer_accepts_marketing"))
    )
    sms_consent = (
        sms_state == "subscribed"
        if sms_state is not None
        else bool(opt_bool(body, "buyer_accepts_sms_marketing"))
    )
    shipping = child(body, "shipping_address", "")
    first_name = opt_str(customer, "first_name", "customer") if customer else None
    if first_name is None and shipping is not None:
        first_name = opt_str(shipping, "first_name", "shipping_address")
    email = opt_str(body, "email") or (opt_str(customer, "email", "customer") if customer else None)
    phone = opt_str(body, "phone") or (opt_str(customer, "phone", "customer") if customer else None)
    return drop_none(
        {
            "email": email,
            "phone": phone,
            "sms_phone": opt_str(body, "sms_marketing_phone"),
            "customer_id": opt_str(customer, "id", "customer") if customer else None,
            "first_name": first_name,
            "email_consent": email_consent,
            "sms_consent": sms_consent,
            "locale": opt_str(body, "customer_locale"),
        }
    )


def history(body: Mapping[str, Any]) -> dict[str, Any] | None:
    customer = child(body, "customer", "")
    if customer is None:
        return None
    orders = opt_int(customer, "orders_count", "customer")
    spent = opt_money(customer, "total_spent", "customer")
    if orders is None and spent is None:
        return None
    return drop_none({"orders_count": orders, "total_spent": spent})


def address(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """Country, province and zip only: enough for a time zone, no street lines."""
    raw = child(body, key, "")
    if raw is None:
        return None
    kept = drop_none(
        {
            "country_code": opt_str(raw, "country_code", key),
            "province_code": opt_str(raw, "province_code", key),
            "zip": opt_str(raw, "zip", key),
        }
    )
    return kept or None


def discount_codes(body: Mapping[str, Any]) -> list[str]:
    codes = []
    for index, raw in enumerate(as_list(body, "discount_codes")):
        path = join("discount_codes", index)
        if isinstance(raw, str):
            codes.append(raw)
            continue
        code = opt_str(as_object(raw, path), "code", path)
        if code:
            codes.append(code)
    return codes


def customer_redaction(
    body: Mapping[str, Any], store: str, event_id: str, received_at: datetime
) -> Emit:
    customer = child(body, "customer", "")
    if customer is None:
        raise missing_field("customer")
    customer_id = opt_str(customer, "id", "customer")
    email = opt_str(customer, "email", "customer")
    phone = opt_str(customer, "phone", "customer")
    key = shopper_key(store, customer_id, email, phone)
    if key is None:
        raise missing_field("customer.id")
    value = drop_none(
        {
            "type": "shopper_redacted",
            "store": store,
            "event_id": event_id,
            "occurred_at": received_at,
            "customer_id": customer_id,
            "email": email,
            "phone": phone,
        }
    )
    return Emit("shopper_events", key, value)


def shop_redaction(store: str, event_id: str, received_at: datetime) -> list[Emit]:
    value = {
        "type": "store_redacted",
        "store": store,
        "event_id": event_id,
        "occurred_at": received_at,
    }
    return [
        Emit("cart_events", store, value, broadcast=True),
        Emit("shopper_events", store, value, broadcast=True),
    ]


def data_request(body: Mapping[str, Any], store: str, event_id: str, received_at: datetime) -> Emit:
    """An audit record: which shopper (by hashed key only) asked for their data, and when."""
    customer = child(body, "customer", "")
    if customer is None:
        raise missing_field("customer")
    key = shopper_key(
        store,
        opt_str(customer, "id", "customer"),
        opt_str(customer, "email", "customer"),
        opt_str(customer, "phone", "customer"),
    )
    if key is None:
        raise missing_field("customer.id")
    request = child(body, "data_request", "")
    value = drop_none(
        {
            "type": "data_request",
            "reason": "data_request",
            "store": store,
            "event_id": event_id,
            "occurred_at": received_at,
            "shopper": key,
            "request_id": opt_str(request, "id", "data_request") if request else None,
            "orders_requested": [
                str(o) for o in as_list(body, "orders_requested") if isinstance(o, int | str)
            ],
        }
    )
    return Emit("ingest_dlq", key, value)
