"""Unit tests of the gateway's pure parts: signatures, normalizers, limits, config."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from config.policyfile import load_policy
from gateway import bigcommerce, generic, shopify, twilio, woocommerce
from gateway.config import ConfigError, build_config, site_host
from gateway.dlq import rejection, scrub_headers
from gateway.errors import Reject
from gateway.fields import to_money, to_time
from gateway.ratelimit import TokenBucket
from gateway.signatures import (
    bearer,
    hmac_sha256_b64,
    twilio_signature,
    verify_body_hmac,
    verify_token,
    verify_twilio,
)
from recovery.ids import shopper_key
from recovery.policyset import parse_policy
from tests.gateway.helpers import ENV, fixture_json, write_policy

NOW = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


# -- signatures ---------------------------------------------------------------------------


def test_body_hmac_known_vector():
    # printf 'hello' | openssl dgst -sha256 -hmac secret -binary | base64
    assert hmac_sha256_b64(b"hello", b"secret") == "iKqz7ejTrflNJquQ07r9SiCDBww7zOnAFO4EpEOEfAs="


def test_body_hmac_accepts_any_current_secret_and_refuses_the_rest():
    signature = hmac_sha256_b64(b"{}", b"old")
    assert verify_body_hmac(b"{}", signature, [b"new", b"old"])
    assert not verify_body_hmac(b"{}", signature, [b"new"])
    assert not verify_body_hmac(b"{ }", signature, [b"old"])
    assert not verify_body_hmac(b"{}", None, [b"old"])
    assert not verify_body_hmac(b"{}", "not base64!!", [b"old"])
    assert not verify_body_hmac(b"{}", signature, [])


def test_twilio_signature_matches_the_documented_example():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params.items(), b"12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert verify_twilio(url, list(params.items()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", [b"12345"])
    assert not verify_twilio(
        url + "&x=1", list(params.items()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", [b"12345"]
    )


def test_bearer_and_token():
    assert bearer("Bearer abc ") == "abc"
    assert bearer("bearer abc") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert verify_token("abc", [b"xyz", b"abc"])
    assert not verify_token("ab", [b"abc"])
    assert not verify_token(None, [b"abc"])


# -- Shopify --------------------------------------------------------------------------------


def test_shopify_checkout_normalized():
    (emit,) = shopify.normalize(
        "checkouts/update", fixture_json("shopify_checkout.json"), "acme", "wh1", NOW
    )
    value = emit.value
    assert emit.stream == "cart_events" and emit.key == "acme:c1a2b3d4e5f60718293a4b5c6d7e8f90"
    assert value["occurred_at"] == datetime(2026, 11, 2, 15, 1, 30, tzinfo=UTC)
    assert value["total"] == Decimal("249.90") and value["subtotal"] == Decimal("229.90")
    assert value["presentment_total"] == Decimal("341.36")
    assert value["line_items"][1] == {
        "title": "Cleaning brush",
        "quantity": 2,
        "price": Decimal("15.00"),
        "product_id": "8012345679",
        "variant_id": "44120117150",
    }
    assert value["contact"] == {
        "email": "Ada.Lovelace@Example.com",
        "phone": "+1 (212) 555-0100",
        "sms_phone": "+12125550100",
        "customer_id": "7201234567",
        "first_name": "Ada",
        "email_consent": True,
        "sms_consent": True,
        "locale": "en-US",
    }
    assert "completed_at" not in value
    assert "shipping" not in value, "no shipping line chosen yet: unknown, not free"


def test_shopify_shipping_charge_is_the_sum_of_shipping_lines():
    payload = fixture_json("shopify_checkout.json")
    payload["shipping_lines"] = [
        {"title": "Standard", "price": "7.50", "code": "STD"},
        {"title": "Gift wrap", "price": "2.00"},
    ]
    (emit,) = shopify.normalize("checkouts/update", payload, "acme", "wh1", NOW)
    # CAD lines without a shop-money price, at the checkout's own rate (249.90 / 341.36 USD)
    assert emit.value["shipping"] == Decimal("6.95")
    payload["shipping_lines"][0]["price_set"] = {
        "shop_money": {"amount": "5.49", "currency_code": "USD"},
        "presentment_money": {"amount": "7.50", "currency_code": "CAD"},
    }
    (emit,) = shopify.normalize("checkouts/update", payload, "acme", "wh1", NOW)
    assert emit.value["shipping"] == Decimal("5.49") + Decimal("1.46")
    payload["shipping_lines"] = [{"title": "Standard", "price": "seven"}]
    with pytest.raises(Reject) as bad:
        shopify.normalize("checkouts/update", payload, "acme", "wh1", NOW)
    assert bad.value.detail.startswith("shipping_lines[0].price")


def test_shopify_consent_state_wins_over_checkbox():
    payload = fixture_json("shopify_checkout.json")
    payload["buyer_accepts_marketing"] = True
    payload["customer"]["email_marketing_consent"]["state"] = "unsubscribed"
    (emit,) = shopify.normalize("checkouts/create", payload, "acme", "w", NOW)
    assert emit.value["contact"]["email_consent"] is False
    del payload["customer"]
    (emit,) = shopify.normalize("checkouts/create", payload, "acme", "w", NOW)
    assert emit.value["contact"]["email_consent"] is True
    assert "customer" not in emit.value


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        ({"token": None}, "missing_field", "token: required field is missing"),
        ({"total_price": "12,50"}, "invalid_amount", "total_price: must be a decimal string"),
        ({"currency": "dollars"}, "invalid_field", "currency: must be an ISO 4217"),
        ({"updated_at": "yesterday"}, "invalid_field", "updated_at: not an ISO-8601 time"),
        ({"line_items": [{"title": "x", "quantity": 1, "price": "a"}]}, "invalid_amount",
         "line_items[0].price: must be a decimal string"),
        ({"line_items": [{"title": "x", "price": "1"}]}, "missing_field",
         "line_items[0].quantity"),
        ({"customer": "bob"}, "invalid_field", "customer: must be a JSON object"),
    ],
)  # fmt: skip
def test_shopify_checkout_errors_name_the_field(change, reason, detail):
    payload = {**fixture_json("shopify_checkout.json"), **change}
    with pytest.raises(Reject) as caught:
        shopify.normalize("checkouts/update", payload, "acme", "w", NOW)
    assert caught.value.status == 400
    assert caught.value.reason == reason
    assert caught.value.detail.startswith(detail)


def test_shopify_order_without_checkout_token_still_converts_the_shopper():
    payload = {**fixture_json("shopify_order.json"), "checkout_token": None}
    (emit,) = shopify.normalize("orders/create", payload, "acme", "w", NOW)
    assert emit.value["checkout"] == "order-5550001234"
    assert emit.value["contact"]["customer_id"] == "7201234567"


def test_shopify_redactions():
    (emit,) = shopify.normalize(
        "customers/redact", {"customer": {"email": "A@x.com"}}, "acme", "w", NOW
    )
    assert emit.stream == "shopper_events"
    assert emit.key == shopper_key("acme", email="a@x.com")
    emits = shopify.normalize("shop/redact", {"shop_id": 1}, "acme", "w", NOW)
    assert {e.stream for e in emits} == {"cart_events", "shopper_events"}
    assert all(e.broadcast and e.value["type"] == "store_redacted" for e in emits)
    with pytest.raises(Reject):
        shopify.normalize("customers/redact", {"customer": {}}, "acme", "w", NOW)
    with pytest.raises(Reject) as caught:
        shopify.normalize("themes/publish", {}, "acme", "w", NOW)
    assert caught.value.reason == "unsupported_topic"


# -- BigCommerce ------------------------------------------------------------------------------


def _hook(**change):
    return {
        "created_at": 1561482670,
        "store_id": "1025646",
        "producer": "stores/ABC123",
        "scope": "store/cart/converted",
        "hash": "352e4afc",
        "data": {"type": "cart", "id": "0934", "orderId": 252},
        **change,
    }


def test_bigcommerce_hook_parsing():
    hook = bigcommerce.parse_hook(_hook())
    assert (hook.store_hash, hook.cart_id, hook.order_id, hook.delivery) == (
        "abc123",
        "0934",
        "252",
        "352e4afc",
    )
    assert hook.created_at == datetime(2019, 6, 25, 17, 11, 10, tzinfo=UTC)
    assert not hook.wants_cart
    order = bigcommerce.parse_hook(
        _hook(scope="store/order/created", data={"type": "order", "id": 250})
    )
    assert (order.order_id, order.cart_id) == ("250", None)
    with pytest.raises(Reject, match="hash"):
        bigcommerce.parse_hook(_hook(hash=None))
    with pytest.raises(Reject, match="orderId"):
        bigcommerce.parse_hook(_hook(data={"type": "cart", "id": "1"}))
    with pytest.raises(Reject, match="producer"):
        bigcommerce.parse_hook(_hook(producer="elsewhere"))


def test_bigcommerce_cart_money_from_json_numbers():
    hook = bigcommerce.parse_hook(_hook(scope="store/cart/abandoned", data={"id": "c9"}))
    cart = {
        "id": "c9",
        "customer_id": 0,
        "currency": {"code": "EUR"},
        "base_amount": 0.1 + 0.2,
        "cart_amount": 19.99,
        "line_items": {"custom_items": [{"name": "Gift wrap", "quantity": 1, "list_price": 2}]},
    }
    emit = bigcommerce.cart_event(cart, "acme", hook)
    assert emit.value["total"] == Decimal("19.99")
    assert emit.value["subtotal"] == Decimal("0.30"), "a float's noise is not money"
    assert emit.value["line_items"][0]["price"] == Decimal("2")
    assert "customer_id" not in emit.value["contact"]
    assert emit.value["occurred_at"] == hook.created_at


# -- WooCommerce ------------------------------------------------------------------------------


def _order(status="completed", **change):
    return {
        "id": 9,
        "status": status,
        "currency": "usd",
        "total": "10.00",
        "cart_hash": "h",
        "date_created_gmt": "2026-11-02T15:00:00",
        **change,
    }


def test_woocommerce_orders():
    emit = woocommerce.order_event(_order(), "acme", "wc:1", "_cartbands_checkout")
    assert emit is not None
    assert (emit.key, emit.value["currency"]) == ("acme:h", "USD")
    assert woocommerce.order_event(_order("pending"), "acme", "wc:1", "k") is None
    emit = woocommerce.order_event(_order(cart_hash=""), "acme", "wc:1", "k")
    assert emit is not None and emit.value["checkout"] == "order-9"
    with pytest.raises(Reject, match="status"):
        woocommerce.order_event(_order(status=None), "acme", "wc:1", "k")


# -- generic ---------------------------------------------------------------------------------


def _event(**change):
    return {
        "type": "cart_updated",
        "store": "acme",
        "checkout": "c",
        "event_id": "e",
        "occurred_at": "2026-11-02T15:00:00Z",
        "currency": "USD",
        "total": "1.00",
        **change,
    }


def test_generic_validation():
    (emit,) = generic.normalize(_event(), "acme")
    assert emit.key == "acme:c"
    assert emit.value["occurred_at"] == datetime(2026, 11, 2, 15, tzinfo=UTC)
    consent = {
        "type": "consent_changed",
        "store": "acme",
        "event_id": "u1",
        "occurred_at": "2026-11-02T15:00:00Z",
        "channel": "email",
        "granted": False,
        "email": "Z@x.com",
    }
    (emit,) = generic.normalize(consent, "acme")
    assert (emit.stream, emit.key) == ("shopper_events", shopper_key("acme", email="z@x.com"))
    cases = [
        (_event(extra=1), "extra: unknown field", None),
        ([_event(), _event(total=None)], "[1].total: required field is missing", None),
        (_event(type="nope"), "type: must be one of", None),
        (_event(occurred_at="soon"), "occurred_at: not an ISO-8601 time", None),
        (_event(line_items=[{"title": "t", "quantity": "2", "price": "1"}]),
         "line_items[0].quantity: must be of type integer", None),
        ([], "body: an empty list", None),
        (_event(store="other"), "store: not the authenticated store", 403),
    ]  # fmt: skip
    for payload, detail, status in cases:
        with pytest.raises(Reject) as caught:
            generic.normalize(payload, "acme")
        assert caught.value.detail.startswith(detail.split(":")[0]), caught.value.detail
        assert detail.split(": ", 1)[1] in caught.value.detail, caught.value.detail
        assert caught.value.status == (status or 400)


# -- Twilio ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word"),
    [("STOP", "stop"), (" stop ", "stop"), ("Opt  Out", "stop"), ("unsubscribe", "stop"),
     ("Cancel.", "stop"), ("end", "stop"), ("QUIT", "stop"), ("revoke", "stop"),
     ("start", "start"), ("UNSTOP", "start"), ("stop please", None), ("", None), ("hi", None)],
)  # fmt: skip
def test_twilio_keywords(text, word):
    assert twilio.keyword(text) == word


def test_twilio_consent_event():
    emit = twilio.consent_event("acme", "+1 (212) 555-0100", "SM1", "stop", NOW)
    assert emit.key == shopper_key("acme", phone="+1 (212) 555-0100")
    assert emit.value["phone"] == "+12125550100"
    assert (emit.value["channel"], emit.value["granted"]) == ("all", False)


# -- limits, dead letters, fields, config ----------------------------------------------------


def test_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(100.0) and bucket.tokens == pytest.approx(2.0)


def test_dead_letter_scrubs_secrets_and_encodes_binary():
    headers = {
        "X-Shopify-Hmac-Sha256": "sig",
        "Authorization": "Bearer t",
        "X-My-Hook-Pass": "p",
        "X-Shopify-Topic": "orders/paid",
    }
    assert scrub_headers(headers, ["x-my-hook-pass"]) == {"X-Shopify-Topic": "orders/paid"}
    emit = rejection(
        route="shopify",
        status=400,
        reason="malformed_json",
        detail="d",
        headers=headers,
        body=b"\xff" * 10,
        limit=4,
        received_at=NOW,
        store=None,
    )
    assert emit.key == "shopify"
    assert emit.value["body"] == base64.b64encode(b"\xff" * 4).decode()
    assert emit.value["truncated"] is True and emit.value["body_encoding"] == "base64"


def test_fields():
    assert to_money("100", "USD", "x") == Decimal("100")
    assert to_money(19.99, "USD", "x") == Decimal("19.99")
    assert to_time("2026-11-02T10:00:00-05:00", "t") == datetime(2026, 11, 2, 15, tzinfo=UTC)
    assert to_time("2026-11-02T15:00:00", "t") == datetime(2026, 11, 2, 15, tzinfo=UTC)
    for bad in ("NaN", "Infinity", True, [], "1,5", "1E+2"):
        with pytest.raises(Reject):
            to_money(bad, "USD", "x")


def test_config_resolves_identities_and_secrets(tmp_path):
    config = build_config(load_policy(write_policy(tmp_path / "p.yaml")), ENV)
    assert config.shopify_domains["acme-coffee.myshopify.com"] == "acme"
    assert config.woocommerce_sites["shop.acme.example"] == "acme"
    assert config.twilio_numbers["+15005550006"] == "acme"
    assert config.bigcommerce_hashes["abc123"] == "acme"
    assert len(config.stores["acme"].shopify_secrets) == 2
    assert "x-cartbands-secret" in config.secret_headers
    assert site_host("https://Shop.Example.com/wp") == "shop.example.com"


def test_config_reports_every_problem(tmp_path):
    data = {
        "defaults": {"bands": [{"name": "low", "min": 0}]},
        "stores": {
            "a": {"ingest": {"shopify": {"domains": ["s.myshopify.com"], "secret_env": "NOPE"}}},
            "b": {"ingest": {"shopify": {"domains": ["s.myshopify.com"]}}},
        },
    }
    with pytest.raises(ConfigError) as caught:
        build_config(parse_policy(data), {})
    text = str(caught.value)
    assert "stores.a.ingest.shopify.secret_env: none of NOPE is set" in text
    assert "already claimed by store 'a'" in text
    assert "stores.b.ingest.shopify.secret_env: required" in text
