"""Shopify webhooks -> canonical records (pure).

Topics: ``checkouts/create|update`` -> ``cart_updated``; ``orders/create|paid`` ->
``cart_completed`` (the checkout is the order's ``checkout_token``; an order without one, e.g.
from POS, gets ``order-<id>`` so the shopper's sequences still learn of the purchase);
``customers/redact`` -> ``shopper_redacted``; ``shop/redact`` -> ``store_redacted`` (to every
partition of both streams); ``customers/data_request`` -> an audit record on ``ingest-dlq``
(the gateway holds no data; an operator exports what the workers hold).

The checkout's identity is ``token`` (checkout webhooks carry no numeric id since 2026-04).

Money: a checkout's prices are in the presentment currency (the shopper's), ``currency`` is
the shop's. A record's amounts are in the shop currency when the payload says what they are
there: each amount's ``*_set.shop_money`` where sent, else converted with the checkout's own
rate (its ``total_price_set`` shop amount over its presentment amount). Without a shop-money
total the record is labelled with the presentment currency, so the core values it with the
store's ``fx_rates`` or says why it cannot, never taking a euro for a dollar. An order's
``total_price`` is in the shop currency, and so are its ``discounts`` (see
:func:`order_discounts`). Every amount is checked against its currency's rule
(:mod:`recovery.amounts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.discounts import bounded, code_of, entry
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
    opt_str,
    opt_time,
    req_currency,
    req_str,
    to_money,
)
from recovery import amounts
from recovery.ids import checkout_key, shopper_key

CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})
ORDER_TOPICS = frozenset({"orders/create", "orders/paid"})
PRIVACY_TOPICS = frozenset({"customers/redact", "shop/redact", "customers/data_request"})
TOPICS = CHECKOUT_TOPICS | ORDER_TOPICS | PRIVACY_TOPICS

PLATFORM = "shopify"


def normalize(
    topic: str, payload: Any, store: str, event_id: str, received_at: datetime
) -> list[Emit]:
    """The records one Shopify webhook stands for; raises ``Reject`` on unusable input.

    The caller accepts a topic outside :data:`TOPICS` without calling this (a refusal would
    make Shopify retry it and, after repeated failures, remove the subscription)."""
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
    raise Reject(400, "unsupported_topic", "X-Shopify-Topic is not handled")


@dataclass(frozen=True)
class Amounts:
    """How one payload's amounts become money in ``currency``, the record's currency:
    ``shop`` is the shop's currency, ``shown`` the shopper's (presentment), ``rate`` shop
    units per presentment unit (the payload's own, from its total)."""

    currency: str
    shown: str
    shop: str
    rate: Decimal | None = None

    def read(self, holder: Mapping[str, Any], key: str, path: str = "") -> Decimal | None:
        """``key`` of ``holder`` in ``currency``, or ``None`` when absent."""
        where = join(path, key)
        raw = holder.get(key)
        given = None if raw is None or raw == "" else to_money(raw, self.shown, where)
        if self.currency == self.shop:
            shop_money = money_set(holder, key, "shop_money", self.shop, path)
            if shop_money is not None:
                return shop_money
        if given is None or self.shown == self.currency:
            return given
        if self.rate is None:
            raise Reject(
                400,
                "invalid_amount",
                f"{where}: in {self.shown} without {key}_set.shop_money, and no rate to "
                f"{self.currency} (the total is 0)",
            )
        try:
            return amounts.convert(given, self.rate, self.currency)
        except amounts.AmountError as exc:
            raise Reject(400, "invalid_amount", f"{where}: {exc}") from None

    def require(self, holder: Mapping[str, Any], key: str, path: str = "") -> Decimal:
        value = self.read(holder, key, path)
        if value is None:
            raise missing_field(join(path, key))
        return value


def money_set(
    holder: Mapping[str, Any], key: str, side: str, currency: str, path: str
) -> Decimal | None:
    """``{key}_set.{side}.amount`` in ``currency`` (its ``currency_code`` must agree)."""
    base = join(path, f"{key}_set")
    money_bag = child(holder, f"{key}_set", path)
    if money_bag is None:
        return None
    money = child(money_bag, side, base)
    if money is None:
        return None
    where = join(base, side)
    code = opt_currency(money, "currency_code", where)
    if code is not None and code != currency:
        raise bad_field(join(where, "currency_code"), f"must be {currency}")
    if money.get("amount") is None or money.get("amount") == "":
        return None
    return to_money(money["amount"], currency, join(where, "amount"))


def checkout_amounts(body: Mapping[str, Any]) -> tuple[Amounts, Decimal]:
    """The checkout's :class:`Amounts` and its total in the presentment currency."""
    shop = req_currency(body, "currency")
    shown = opt_currency(body, "presentment_currency") or shop
    if body.get("total_price") is None or body.get("total_price") == "":
        raise missing_field("total_price")
    given = to_money(body["total_price"], shown, "total_price")
    shown_total = money_set(body, "total_price", "presentment_money", shown, "")
    if shown_total is None:
        shown_total = given
    if shown == shop:
        return Amounts(shop, shown, shop), shown_total
    shop_total = money_set(body, "total_price", "shop_money", shop, "")
    if shop_total is None:
        return Amounts(shown, shown, shop), shown_total
    rate = shop_total / shown_total if shown_total else None
    return Amounts(shop, shown, shop, rate), shown_total


def checkout_event(body: Mapping[str, Any], store: str, event_id: str) -> Emit:
    token = req_str(body, "token")
    money, shown_total = checkout_amounts(body)
    multi = money.shown != money.shop
    value = drop_none(
        {
            "type": "cart_updated",
            "store": store,
            "checkout": token,
            "event_id": event_id,
            "platform": PLATFORM,
            "occurred_at": first_time(body, ("updated_at", "created_at")),
            "currency": money.currency,
            "total": money.require(body, "total_price"),
            "subtotal": money.read(body, "subtotal_price"),
            "shipping": shipping_charge(body, money),
            "presentment_currency": money.shown if multi else None,
            "presentment_total": shown_total if multi else None,
            "line_items": line_items(body, money),
            "contact": contact(body),
            "customer": history(body, money.shop),
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
    shop = req_currency(body, "currency")
    total = money_set(body, "total_price", "shop_money", shop, "")
    if total is None:  # an order's total_price is in the shop currency
        total = Amounts(shop, shop, shop).require(body, "total_price")
    value = drop_none(
        {
            "type": "cart_completed",
            "store": store,
            "checkout": checkout,
            "event_id": event_id,
            "platform": PLATFORM,
            "occurred_at": first_time(body, ("processed_at", "created_at", "updated_at")),
            "currency": shop,
            "total": total,
            "order_id": order_id,
            "contact": contact(body),
            "discounts": order_discounts(body, shop),
        }
    )
    return Emit("cart_events", checkout_key(store, checkout), value)


def shipping_charge(body: Mapping[str, Any], money: Amounts) -> Decimal | None:
    """The shipping included in ``total_price``: the sum of ``shipping_lines[].price``, or
    ``None`` while no shipping line is chosen (unknown, not free)."""
    lines = as_list(body, "shipping_lines")
    if not lines:
        return None
    charge = Decimal("0")
    for index, raw in enumerate(lines):
        path = join("shipping_lines", index)
        charge += money.require(as_object(raw, path), "price", path)
    return charge


def line_items(body: Mapping[str, Any], money: Amounts) -> list[dict[str, Any]]:
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
                    "price": money.require(item, "price", path),
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


def history(body: Mapping[str, Any], shop_currency: str) -> dict[str, Any] | None:
    """The customer's past orders; ``total_spent`` is in the shop currency."""
    customer = child(body, "customer", "")
    if customer is None:
        return None
    orders = opt_int(customer, "orders_count", "customer")
    if orders is not None and orders < 0:
        raise bad_field("customer.orders_count", "must not be negative")
    spent = Amounts(shop_currency, shop_currency, shop_currency).read(
        customer, "total_spent", "customer"
    )
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


def discount_rate(body: Mapping[str, Any], shop: str, shown: str) -> Decimal | None:
    """Shop units per presentment unit of the order's discounts: its ``total_discounts_set``
    (shop over presentment amount), else its ``total_price_set``; ``None`` when neither is
    sent or its presentment amount is 0."""
    for key in ("total_discounts", "total_price"):
        shop_amount = money_set(body, key, "shop_money", shop, "")
        shown_amount = money_set(body, key, "presentment_money", shown, "")
        if shop_amount is not None and shown_amount:
            return shop_amount / shown_amount
    return None


def order_discounts(body: Mapping[str, Any], shop: str) -> list[dict[str, Any]]:
    """``discount_codes: [{code, amount, type}]`` as canonical ``discounts`` in the shop
    currency. Per the Order resource, ``amount`` is what the code took off once the order is
    created; it is read as the shopper saw it (presentment currency, as the checkout's
    prices), so an order presented in another currency has it converted at the order's own
    discount rate (:func:`discount_rate`); with no rate to convert at, the code is kept with
    its amount unknown rather than taking one currency for another (an
    ``amount_set.shop_money``, if sent, is used as is)."""
    shown = opt_currency(body, "presentment_currency") or shop
    rate = None if shown == shop else discount_rate(body, shop, shown)
    money = Amounts(shop, shown, shop, rate)
    entries = []
    path = "discount_codes"
    for index, raw in enumerate(bounded(as_list(body, path), path)):
        where = join(path, index)
        if isinstance(raw, str):  # a bare code, as some API versions wrote it
            entries.append(entry(code_of(raw, where), None))
            continue
        item = as_object(raw, where)
        code = code_of(item.get("code"), join(where, "code"))
        if shown != shop and rate is None:
            amount = money_set(item, "amount", "shop_money", shop, where)
        else:
            amount = money.read(item, "amount", where)
        entries.append(entry(code, amount))
    return entries


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
