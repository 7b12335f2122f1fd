"""BigCommerce webhooks and REST resources -> canonical records (pure).

Webhooks are thin: ``{created_at, store_id, producer: "stores/{hash}", scope, hash,
data: {type, id, ...}}``; ``hash`` is the same on every delivery of one event (the delivery
id). The shell fetches the resource (:mod:`gateway.bigcommerce_api`) and hands it here:
``store/cart/created|updated|abandoned`` -> the cart (``GET /v3/carts/{id}``) as
``cart_updated``; ``store/cart/converted`` (``data.orderId``) and ``store/order/created`` ->
the order (``GET /v2/orders/{id}``, whose ``cart_id`` is the converted cart) as
``cart_completed``, with the codes it used from ``GET /v2/orders/{id}/coupons`` (fetched only
when the order's ``coupon_discount`` is not 0). Cart amounts are JSON numbers: read through
their shortest repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.discounts import bounded, code_of, entry
from gateway.emit import Emit
from gateway.errors import bad_field, missing_field
from gateway.fields import (
    as_list,
    as_object,
    child,
    drop_none,
    join,
    opt_int,
    opt_money,
    opt_str,
    req_currency,
    req_money,
    to_time,
)
from recovery.ids import checkout_key

# Cart ids are UUIDs, order ids integers: anything else would be put into a REST path.
_CART_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_ORDER_ID = re.compile(r"[0-9]{1,20}")
CART_SCOPES = frozenset({"store/cart/created", "store/cart/updated", "store/cart/abandoned"})
ORDER_SCOPES = frozenset({"store/cart/converted", "store/order/created"})
PLATFORM = "bigcommerce"
ITEM_KINDS = ("physical_items", "digital_items", "custom_items")


@dataclass(frozen=True)
class Hook:
    scope: str
    store_hash: str
    delivery: str
    created_at: datetime
    cart_id: str | None
    order_id: str | None

    @property
    def wants_cart(self) -> bool:
        return self.scope in CART_SCOPES

    @property
    def handled(self) -> bool:
        """False for a scope the gateway does not use (accepted and ignored once verified:
        a refusal would be retried and, repeated, deactivate the hook)."""
        return self.scope in CART_SCOPES or self.scope in ORDER_SCOPES


def parse_hook(payload: Any) -> Hook:
    body = as_object(payload, "")
    scope = opt_str(body, "scope")
    if scope is None:
        raise missing_field("scope")
    producer = opt_str(body, "producer")
    if producer is None:
        raise missing_field("producer")
    if not producer.startswith("stores/") or not producer[len("stores/") :]:
        raise bad_field("producer", "must look like stores/{store_hash}")
    delivery = opt_str(body, "hash")
    if delivery is None:
        raise missing_field("hash")
    created = body.get("created_at")
    if created is None:
        raise missing_field("created_at")
    store_hash = producer[len("stores/") :].strip().lower()
    if scope not in CART_SCOPES and scope not in ORDER_SCOPES:
        return Hook(scope, store_hash, delivery, to_time(created, "created_at"), None, None)
    data = child(body, "data", "")
    if data is None:
        raise missing_field("data")
    resource = opt_str(data, "id", "data")
    if resource is None:
        raise missing_field("data.id")
    cart_id: str | None = None
    order_id: str | None = None
    if scope in CART_SCOPES:
        cart_id = resource
    elif scope == "store/cart/converted":
        cart_id = resource
        order_id = opt_str(data, "orderId", "data")
        if order_id is None:
            raise missing_field("data.orderId")
    else:
        order_id = resource
    if cart_id is not None and not _CART_ID.fullmatch(cart_id):
        raise bad_field("data.id", "must be a BigCommerce cart id")
    if order_id is not None and not _ORDER_ID.fullmatch(order_id):
        path = "data.orderId" if scope == "store/cart/converted" else "data.id"
        raise bad_field(path, "must be a BigCommerce order id")
    return Hook(
        scope=scope,
        store_hash=store_hash,
        delivery=delivery,
        created_at=to_time(created, "created_at"),
        cart_id=cart_id,
        order_id=order_id,
    )


def _item(raw: Any, path: str, currency: str) -> dict[str, Any]:
    item = as_object(raw, path)
    quantity = opt_int(item, "quantity", path)
    if quantity is None:
        raise missing_field(join(path, "quantity"))
    if quantity < 0:
        raise bad_field(join(path, "quantity"), "must not be negative")
    price = opt_money(item, "sale_price", currency, path)
    if price is None:
        price = req_money(item, "list_price", currency, path)
    return drop_none(
        {
            "title": opt_str(item, "name", path) or "",
            "quantity": quantity,
            "price": price,
            "product_id": opt_str(item, "product_id", path),
            "variant_id": opt_str(item, "variant_id", path),
            "sku": opt_str(item, "sku", path),
        }
    )


def cart_event(cart: Any, store: str, hook: Hook) -> Emit:
    """A v3 management cart (the ``data`` of ``GET /v3/carts/{id}``) as ``cart_updated``."""
    body = as_object(cart, "cart")
    cart_id = opt_str(body, "id", "cart") or hook.cart_id
    if cart_id is None:
        raise missing_field("cart.id")
    currency_object = child(body, "currency", "cart")
    if currency_object is None:
        raise missing_field("cart.currency")
    currency = req_currency(currency_object, "code", "cart.currency")
    items = []
    lines = child(body, "line_items", "cart") or {}
    for kind in ITEM_KINDS:
        path = f"cart.line_items.{kind}"
        for index, raw in enumerate(as_list(lines, kind, "cart.line_items")):
            items.append(_item(raw, join(path, index), currency))
    updated = body.get("updated_time")
    customer_id = opt_str(body, "customer_id", "cart")
    value = drop_none(
        {
            "type": "cart_updated",
            "store": store,
            "checkout": cart_id,
            "event_id": hook.delivery,
            "platform": PLATFORM,
            "occurred_at": to_time(updated, "cart.updated_time") if updated else hook.created_at,
            "currency": currency,
            "total": req_money(body, "cart_amount", currency, "cart"),
            "subtotal": opt_money(body, "base_amount", currency, "cart"),
            "line_items": items,
            "contact": drop_none(
                {
                    "email": opt_str(body, "email", "cart"),
                    "customer_id": customer_id if customer_id not in (None, "0") else None,
                    "locale": opt_str(body, "locale", "cart"),
                }
            ),
        }
    )
    return Emit("cart_events", checkout_key(store, cart_id), value)


def _order_time(order: Mapping[str, Any], hook: Hook) -> datetime:
    raw = order.get("date_created")
    if isinstance(raw, str) and raw.strip():
        try:
            return parsedate_to_datetime(raw).astimezone(hook.created_at.tzinfo)
        except (TypeError, ValueError):
            return to_time(raw, "order.date_created")
    return hook.created_at


def wants_coupons(order: Any) -> bool:
    """Whether the order's coupons are worth a call: its ``coupon_discount`` is not 0 (or
    not sent), so the usual order without a coupon costs no second request."""
    body = as_object(order, "order")
    raw = body.get("coupon_discount")
    if raw is None or raw == "":
        return True
    try:
        return bool(Decimal(str(raw)) != 0)
    except InvalidOperation:
        return True  # the coupons say what was taken off; the order's own field is not used


def coupon_discounts(coupons: Any, currency: str) -> list[dict[str, Any]]:
    """The order's coupons (``GET /v2/orders/{id}/coupons``) as canonical ``discounts``:
    ``discount`` is what the coupon took off, in the order's currency (``amount`` is the
    coupon's own value, e.g. 10 for 10%, and is not used)."""
    if not isinstance(coupons, list):
        raise bad_field("coupons", "must be a list")
    entries = []
    for index, raw in enumerate(bounded(coupons, "coupons")):
        where = join("coupons", index)
        coupon = as_object(raw, where)
        code = code_of(coupon.get("code"), join(where, "code"))
        entries.append(entry(code, opt_money(coupon, "discount", currency, where)))
    return entries


def order_event(order: Any, store: str, hook: Hook, coupons: Any = None) -> Emit:
    """A v2 order (``GET /v2/orders/{id}``) as the ``cart_completed`` of its cart, with the
    codes it used when its ``coupons`` were fetched."""
    body = as_object(order, "order")
    order_id = opt_str(body, "id", "order") or hook.order_id
    checkout = opt_str(body, "cart_id", "order") or hook.cart_id or f"order-{order_id}"
    billing = child(body, "billing_address", "order") or {}
    customer_id = opt_str(body, "customer_id", "order")
    currency = req_currency(body, "currency_code", "order")
    value = drop_none(
        {
            "type": "cart_completed",
            "store": store,
            "checkout": checkout,
            "event_id": hook.delivery,
            "platform": PLATFORM,
            "occurred_at": _order_time(body, hook),
            "currency": currency,
            "total": req_money(body, "total_inc_tax", currency, "order"),
            "order_id": order_id,
            "contact": drop_none(
                {
                    "email": opt_str(billing, "email", "order.billing_address"),
                    "phone": opt_str(billing, "phone", "order.billing_address"),
                    "first_name": opt_str(billing, "first_name", "order.billing_address"),
                    "customer_id": customer_id if customer_id not in (None, "0") else None,
                }
            ),
            "discounts": coupon_discounts(coupons, currency) if coupons is not None else None,
        }
    )
    return Emit("cart_events", checkout_key(store, checkout), value)
