"""What code a touch gets (recovery.code_spec) and the platform requests built from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from recovery.code_spec import CodeSpecError, code_kind, code_spec
from recovery.delivery_policy import DeliveryPolicy
from senders.codes import bigcommerce, shopify, woocommerce

START = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
END = START + timedelta(hours=48)


def spec(**overrides):
    args = {
        "code": "ACE4HJ7KMN9P",
        "kind": "percent_off",
        "value": Decimal(10),
        "service": None,
        "expires_at": END,
        "starts_at": START,
        "currency": "USD",
        "touch_id": "t_mid2",
        "store": "demo",
        "shopper": "demo:abc",
        "cart": "m1",
        "band_min": Decimal(50),
        "customer_id": "7001",
        "email": "fay@example.com",
    }
    args.update(overrides)
    return code_spec(**args)


def test_the_spec_is_single_use_bounded_and_tied_to_the_touch():
    made = spec()
    assert made.kind == "percent_off" and made.percentage == Decimal("0.1")
    assert made.min_subtotal == Decimal(50) and made.title == "cartbands t_mid2"
    assert (made.customer_id, made.email) == ("7001", "fay@example.com")
    assert spec(min_subtotal="none").min_subtotal is None
    assert spec(band_min=Decimal(0)).min_subtotal is None  # no floor below the first band
    loose = spec(restrict_to_shopper=False)
    assert loose.customer_id is None and loose.email is None
    assert spec(code=None) is None  # no code, nothing to create


def test_service_incentives_map_to_codes_or_refuse():
    assert code_kind("service", "free_expedited_shipping") == "free_shipping"
    assert code_kind("service", "concierge_call") is None and code_kind(None, None) is None
    free = spec(kind="service", service="free_expedited_shipping", value=None)
    assert free.kind == "free_shipping" and free.value is None
    with pytest.raises(CodeSpecError, match="cannot be a code"):
        spec(kind="service", service="concierge_call")
    with pytest.raises(CodeSpecError, match="without an expiry"):
        spec(expires_at=None)
    with pytest.raises(CodeSpecError, match="before it started"):
        spec(expires_at=START)
    with pytest.raises(CodeSpecError, match="positive value"):
        spec(kind="fixed_off", value=None)


def test_shopify_basic_and_free_shipping_inputs():
    request = shopify.create_request(spec())
    assert "discountCodeBasicCreate" in request["query"]
    data = request["variables"]["basicCodeDiscount"]
    assert data["code"] == "ACE4HJ7KMN9P" and data["title"] == "cartbands t_mid2"
    assert data["usageLimit"] == 1 and data["appliesOncePerCustomer"] is True
    assert data["startsAt"] == "2026-11-03T15:00:00Z" and data["endsAt"] == "2026-11-05T15:00:00Z"
    assert data["context"] == {"customers": {"add": ["gid://shopify/Customer/7001"]}}
    assert data["customerGets"] == {"value": {"percentage": 0.1}, "items": {"all": True}}
    assert data["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "50.00"}}
    fixed = shopify.create_request(spec(kind="fixed_off", value=Decimal("7.5"), customer_id=None))
    data = fixed["variables"]["basicCodeDiscount"]
    assert data["customerGets"]["value"] == {
        "discountAmount": {"amount": "7.50", "appliesOnEachItem": False}
    }
    assert data["context"] == {"all": "ALL"}
    odd = shopify.create_request(spec(customer_id="cust-7"))  # not a Shopify customer id
    assert odd["variables"]["basicCodeDiscount"]["context"] == {"all": "ALL"}
    gid = shopify.create_request(spec(customer_id="gid://shopify/Customer/9"))
    assert gid["variables"]["basicCodeDiscount"]["context"]["customers"]["add"] == [
        "gid://shopify/Customer/9"
    ]
    free = shopify.create_request(spec(kind="free_shipping", value=None, band_min=None))
    assert "discountCodeFreeShippingCreate" in free["query"]
    data = free["variables"]["freeShippingCodeDiscount"]
    assert data["destination"] == {"all": True} and "customerGets" not in data
    assert "minimumRequirement" not in data and data["usageLimit"] == 1
    assert shopify.delete_request("gid://x")["variables"] == {"id": "gid://x"}


def test_woocommerce_coupon_body():
    body = woocommerce.create_body(spec())
    assert body == {
        "code": "ACE4HJ7KMN9P",
        "description": "cartbands t_mid2",
        "date_expires_gmt": "2026-11-05T15:00:00",
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "individual_use": True,
        "discount_type": "percent",
        "amount": "10",
        "email_restrictions": ["fay@example.com"],
        "minimum_amount": "50.00",
    }
    free = woocommerce.create_body(spec(kind="free_shipping", value=None, email=None))
    assert free["free_shipping"] is True and free["amount"] == "0"
    assert "email_restrictions" not in free
    fixed = woocommerce.create_body(spec(kind="fixed_off", value=Decimal(5)))
    assert (fixed["discount_type"], fixed["amount"]) == ("fixed_cart", "5.00")


def test_bigcommerce_promotion_and_code_bodies():
    body = bigcommerce.promotion_body(spec(), [1])
    assert body["redemption_type"] == "COUPON" and body["name"] == "cartbands t_mid2"
    assert body["max_uses"] == 1 and body["status"] == "ENABLED"
    assert body["end_date"] == "2026-11-05T15:00:00+00:00" and body["channels"] == [{"id": 1}]
    rule = body["rules"][0]
    assert rule["action"] == {"cart_value": {"discount": {"percentage_amount": "10"}}}
    assert rule["condition"] == {"cart": {"minimum_spend": "50.00"}}
    free = bigcommerce.promotion_body(spec(kind="free_shipping", value=None), [])
    assert free["rules"][0]["action"] == {"shipping": {"free_shipping": True, "zone_ids": "*"}}
    assert bigcommerce.code_body(spec()) == {
        "code": "ACE4HJ7KMN9P", "max_uses": 1, "max_uses_per_customer": 1,
    }  # fmt: skip


def test_codes_config_validation():
    policy = DeliveryPolicy.model_validate(
        {"codes": {"platform": "shopify", "shop": "acme.myshopify.com"}}
    )
    assert policy.codes.platform == "shopify" and policy.codes.api_version == "2026-10"
    assert DeliveryPolicy().codes.platform == "none"  # the default: codes only printed
    with pytest.raises(ValidationError, match="API version"):
        DeliveryPolicy.model_validate(
            {"codes": {"platform": "shopify", "shop": "a", "api_version": "latest"}}
        )
    with pytest.raises(ValidationError, match="HTTPS"):
        DeliveryPolicy.model_validate(
            {"codes": {"platform": "woocommerce", "base_url": "http://shop.example.com"}}
        )
    with pytest.raises(ValidationError, match="environment variable name"):
        DeliveryPolicy.model_validate(
            {"codes": {"platform": "bigcommerce", "store_hash": "h", "access_token_env": "x y"}}
        )
