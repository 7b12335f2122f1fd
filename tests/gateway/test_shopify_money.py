"""Shopify money: a checkout's prices are in the shopper's (presentment) currency, ``currency``
is the shop's. A record's amounts are shop money where the payload says what they are there,
else labelled with the currency they are really in: never a euro counted as a dollar."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway import shopify
from gateway.errors import Reject
from recovery.policy import StorePolicy
from recovery.shopper_plan import cart_of
from recovery.valuation import CurrencyMismatch, valuate
from schemas.codec import dumps, loads
from tests.gateway.helpers import fixture_json

NOW = datetime(2026, 11, 2, 15, 1, 31, tzinfo=UTC)


def _money(amount: str, currency: str) -> dict[str, str]:
    return {"amount": amount, "currency_code": currency}


def _eur_checkout(**change: Any) -> dict[str, Any]:
    """A USD shop's checkout by a shopper paying in EUR: a EUR 900.00 cart."""
    payload = fixture_json("shopify_checkout.json")
    payload.update(
        currency="USD",
        presentment_currency="EUR",
        total_price="900.00",
        subtotal_price="880.00",
        line_items=[{"title": "Espresso machine", "quantity": 1, "price": "880.00"}],
        total_price_set={"shop_money": _money("972.50", "USD"),
                         "presentment_money": _money("900.00", "EUR")},
    )  # fmt: skip
    payload.pop("subtotal_price_set", None)
    payload.update(change)
    return payload


def _normalize(payload: dict[str, Any], topic: str = "checkouts/update") -> dict[str, Any]:
    (emit,) = shopify.normalize(topic, payload, "acme", "wh", NOW)
    return emit.value


def test_a_multi_currency_checkout_is_in_shop_money():
    value = _normalize(_eur_checkout())
    assert (value["currency"], value["total"]) == ("USD", Decimal("972.50"))
    assert (value["presentment_currency"], value["presentment_total"]) == (
        "EUR",
        Decimal("900.00"),
    )
    # no *_set for these: converted at the checkout's own rate (972.50 / 900.00)
    assert value["subtotal"] == Decimal("950.89")
    assert value["line_items"][0]["price"] == Decimal("950.89")


def test_shop_money_sets_are_preferred_for_every_amount():
    payload = _eur_checkout(
        subtotal_price_set={"shop_money": _money("951.00", "USD"),
                            "presentment_money": _money("880.00", "EUR")},
        shipping_lines=[{"price": "20.00", "price_set": {"shop_money": _money("21.61", "USD")}}],
    )  # fmt: skip
    payload["line_items"][0]["price_set"] = {"shop_money": _money("951.00", "USD")}
    value = _normalize(payload)
    assert value["subtotal"] == Decimal("951.00")
    assert value["line_items"][0]["price"] == Decimal("951.00")
    assert value["shipping"] == Decimal("21.61")


def test_without_shop_money_a_checkout_keeps_its_real_currency():
    """Was banded as USD 900.00; labelled EUR, the core values it with the store's fx_rates
    or says why it cannot."""
    payload = _eur_checkout()
    del payload["total_price_set"]
    value = _normalize(payload)
    assert (value["currency"], value["total"]) == ("EUR", Decimal("900.00"))
    assert value["line_items"][0]["price"] == Decimal("880.00")
    assert "presentment_currency" in value and value["presentment_total"] == Decimal("900.00")
    assert value["customer"]["total_spent"] == Decimal("412.50"), "a customer's is shop money"


def test_a_single_currency_checkout_is_as_sent():
    payload = _eur_checkout(presentment_currency="USD", total_price="972.50")
    del payload["total_price_set"]
    value = _normalize(payload)
    assert (value["currency"], value["total"]) == ("USD", Decimal("972.50"))
    assert "presentment_currency" not in value


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"total_price_set": {"shop_money": _money("972.50", "CAD")}},
         "total_price_set.shop_money.currency_code: must be USD"),
        ({"total_price_set": {"shop_money": _money("1e400", "USD")}},
         "total_price_set.shop_money.amount: must be a decimal string"),
        ({"total_price": "900.001"}, "total_price: must have at most 2 decimal places in EUR"),
        ({"presentment_currency": "JPY", "total_price": "900.5", "total_price_set": None},
         "total_price: must have at most 0 decimal places in JPY"),
        ({"presentment_currency": "EURO"}, "presentment_currency: must be an ISO 4217"),
    ],
)  # fmt: skip
def test_money_that_does_not_add_up_is_refused_naming_the_field(change, detail):
    with pytest.raises(Reject) as caught:
        _normalize(_eur_checkout(**change))
    assert caught.value.status == 400
    assert caught.value.detail.startswith(detail), caught.value.detail


def test_an_order_total_is_shop_money():
    order = fixture_json("shopify_order.json")
    order.update(currency="USD", presentment_currency="EUR", total_price="972.50")
    order["total_price_set"] = {"shop_money": _money("972.50", "USD"),
                                "presentment_money": _money("900.00", "EUR")}  # fmt: skip
    value = _normalize(order, "orders/paid")
    assert (value["currency"], value["total"]) == ("USD", Decimal("972.50"))
    del order["total_price_set"]
    assert _normalize(order, "orders/paid")["total"] == Decimal("972.50")


def _valued(payload: dict[str, Any], policy: StorePolicy) -> Decimal:
    snapshot = loads(dumps(_normalize(payload)))  # as the carts stage reads it off the topic
    return valuate(cart_of(snapshot, "acme", "c", 0.0, 1), policy).value


def test_the_core_values_a_eur_cart_in_the_stores_dollars_never_as_dollars():
    """End to end with the core's valuation: before, the EUR 900 cart was valued USD 900."""
    bands = [{"name": "low", "min": 0}, {"name": "high", "min": 950}]
    usd = StorePolicy(currency="USD", bands=bands)
    assert _valued(_eur_checkout(), usd) == Decimal("972.50")
    no_shop_money = _eur_checkout()
    del no_shop_money["total_price_set"]
    with pytest.raises(CurrencyMismatch):
        _valued(no_shop_money, usd)
    with_rates = StorePolicy(currency="USD", bands=bands, fx_rates={"EUR": "1.08"})
    assert _valued(no_shop_money, with_rates) == Decimal("972.00")
