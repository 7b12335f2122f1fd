"""Each platform's order parser reads the codes used and what each took off (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway import bigcommerce, generic, shopify, woocommerce
from gateway.errors import Reject
from tests.gateway.helpers import fixture_json

NOW = datetime(2026, 11, 5, 16, 0, tzinfo=UTC)


def _shopify(body: dict[str, Any]) -> dict[str, Any]:
    (emit,) = shopify.normalize("orders/create", body, "acme", "wh-1", NOW)
    return emit.value


def _refused(call: Any, field: str) -> Reject:
    with pytest.raises(Reject) as caught:
        call()
    assert caught.value.status == 400
    assert caught.value.detail.startswith(field), caught.value.detail
    return caught.value


def test_shopify_codes_in_any_case_with_presentment_amounts_become_shop_money():
    order = fixture_json("shopify_order_multicurrency.json")
    value = _shopify(order)
    assert (value["currency"], value["total"]) == ("USD", Decimal("224.91"))
    # CAD 31.80 and 8.30 at the order's own discount rate (USD 28.99 for CAD 40.10)
    assert value["discounts"] == [
        {"code": "COMEBACK10", "amount": Decimal("22.99")},
        {"code": "SHIP-FREE", "amount": Decimal("6.00")},
    ]
    assert sum(d["amount"] for d in value["discounts"]) == Decimal(
        order["total_discounts_set"]["shop_money"]["amount"]
    )
    assert "discount_codes" not in value, "the gateway writes the one form that has amounts"


def test_shopify_discount_rate_falls_back_to_the_total_then_to_an_unknown_amount():
    order = fixture_json("shopify_order_multicurrency.json")
    del order["total_discounts_set"]
    by_total = _shopify(order)["discounts"]
    assert by_total[0]["amount"] == Decimal("22.99")  # 31.80 x 224.91 / 311.09
    del order["total_price_set"]
    unknown = _shopify(order)["discounts"]
    assert unknown == [{"code": "COMEBACK10"}, {"code": "SHIP-FREE"}], "never CAD as USD"
    order["discount_codes"][0]["amount_set"] = {
        "shop_money": {"amount": "23.00", "currency_code": "USD"},
        "presentment_money": {"amount": "31.80", "currency_code": "CAD"},
    }
    assert _shopify(order)["discounts"][0] == {"code": "COMEBACK10", "amount": Decimal("23.00")}


def test_shopify_single_currency_order_and_a_bare_code():
    order = fixture_json("shopify_order.json")
    assert _shopify(order)["discounts"] == [{"code": "COMEBACK10", "amount": Decimal("22.99")}]
    order["discount_codes"] = ["thanks"]
    assert _shopify(order)["discounts"] == [{"code": "THANKS"}]
    order["discount_codes"] = []
    assert _shopify(order)["discounts"] == []


@pytest.mark.parametrize(
    ("codes", "field"),
    [
        ({"code": "X"}, "discount_codes: must be a list"),
        ([{"amount": "1.00"}], "discount_codes[0].code: required"),
        ([{"code": "  "}], "discount_codes[0].code: required"),
        ([{"code": 12}], "discount_codes[0].code: must be a string"),
        ([{"code": "X", "amount": "ten"}], "discount_codes[0].amount"),
        ([{"code": "X", "amount": "-5.00"}], "discount_codes[0].amount: must not be negative"),
        ([{"code": "X", "amount": "5.001"}], "discount_codes[0].amount: must have at most 2"),
        (["ok", 7], "discount_codes[1]"),
        ([{"code": f"C{n}"} for n in range(51)], "discount_codes: at most 50"),
    ],
)  # fmt: skip
def test_shopify_malformed_discount_entries_are_refused_naming_the_field(codes, field):
    order = fixture_json("shopify_order.json")
    order["discount_codes"] = codes
    _refused(lambda: _shopify(order), field)


def _woo(**change: Any) -> dict[str, Any]:
    order = {
        "id": 9,
        "status": "processing",
        "currency": "EUR",
        "total": "54.45",
        "cart_hash": "h",
        "date_paid_gmt": "2026-11-05T15:00:00",
        "coupon_lines": [
            {"id": 1, "code": "summer10", "discount": "5.00", "discount_tax": "1.05",
             "meta_data": []},
            {"id": 2, "code": "Loyal-2", "discount": "2.50", "discount_tax": "0.00"},
        ],
        **change,
    }  # fmt: skip
    emit = woocommerce.order_event(order, "acme", "wc:1", "_cartbands_checkout")
    assert emit is not None
    return emit.value


def test_woocommerce_coupon_lines_take_their_discount_and_its_tax():
    assert _woo()["discounts"] == [
        {"code": "SUMMER10", "amount": Decimal("6.05")},
        {"code": "LOYAL-2", "amount": Decimal("2.50")},
    ]
    assert _woo(coupon_lines=[{"code": "x"}])["discounts"] == [{"code": "X"}]
    _refused(lambda: _woo(coupon_lines=[{"code": "x", "discount": "1,00"}]), "coupon_lines[0]")
    _refused(lambda: _woo(coupon_lines=[{"discount": "1.00"}]), "coupon_lines[0].code")
    _refused(lambda: _woo(coupon_lines=["x"]), "coupon_lines[0]: must be a JSON object")


def test_bigcommerce_order_coupons_take_their_discount_not_the_coupon_value():
    hook = bigcommerce.parse_hook(
        {"created_at": 1793631600, "producer": "stores/abc123", "scope": "store/order/created",
         "hash": "h9", "data": {"type": "order", "id": 250}}
    )  # fmt: skip
    order = {
        "id": 250,
        "cart_id": "bc-1",
        "currency_code": "USD",
        "total_inc_tax": "90.0000",
        "coupon_discount": "10.0000",
        "billing_address": {"email": "c@example.com"},
    }
    coupons = [
        {"id": 4, "coupon_id": 7, "order_id": 250, "code": "bcx12", "amount": "10.0000",
         "type": 1, "discount": 10.0},
    ]  # fmt: skip
    assert bigcommerce.wants_coupons(order)
    assert not bigcommerce.wants_coupons({**order, "coupon_discount": "0.0000"})
    value = bigcommerce.order_event(order, "acme", hook, coupons).value
    assert value["discounts"] == [{"code": "BCX12", "amount": Decimal("10.00")}]
    assert "discounts" not in bigcommerce.order_event(order, "acme", hook).value
    broken = [{**coupons[0], "discount": "lots"}]
    _refused(lambda: bigcommerce.order_event(order, "acme", hook, broken), "coupons[0].discount")
    _refused(lambda: bigcommerce.order_event(order, "acme", hook, {"x": 1}), "coupons")


def _completed(**change: Any) -> dict[str, Any]:
    return {
        "type": "cart_completed", "store": "acme", "checkout": "c1", "event_id": "e1",
        "occurred_at": "2026-11-05T15:00:00Z", "currency": "USD", "total": "90.00", **change,
    }  # fmt: skip


def test_generic_orders_carry_discounts_checked_and_normalised():
    (emit,) = generic.normalize(
        _completed(discounts=[{"code": " back10 ", "amount": "10.00"}], discount_codes=["old"]),
        "acme",
    )
    assert emit.value["discounts"] == [{"code": "BACK10", "amount": "10.00"}]
    assert emit.value["discount_codes"] == ["OLD"]
    for discounts, field in [
        ([{"code": "X", "amount": "1.001"}], "discounts[0].amount"),
        ([{"code": "X", "amount": 1.5}], "discounts[0].amount"),
        ([{"code": ""}], "discounts[0].code"),
        ([{"code": "X", "percent": "10"}], "discounts[0]"),
        ([{"amount": "1.00"}], "discounts[0]"),
    ]:
        _refused(lambda d=discounts: generic.normalize(_completed(discounts=d), "acme"), field)
