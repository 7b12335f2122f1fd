"""Shopify webhooks through a running gateway onto the real broker."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from recovery.ids import shopper_key
from schemas.codec import loads
from schemas.jsonschema import record_schema
from schemas.records import CartCompleted, CartUpdated, ShopperRedacted, StoreRedacted
from tests.gateway.helpers import (
    SHOPIFY_OLD_SECRET,
    Records,
    fixture_bytes,
    fixture_json,
    having,
    post,
    running_gateway,
    shopify_headers,
    write_policy,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def policy(tmp_path):
    return write_policy(tmp_path / "policy.yaml")


async def test_checkout_lands_normalized_on_cart_events(broker, policy):
    body = fixture_bytes("shopify_checkout.json")
    async with running_gateway(broker.bootstrap, policy) as gw:
        status, answer = await post(
            gw.url + "/webhooks/shopify", body, shopify_headers(body, "checkouts/update", "wh-1")
        )
        assert status == 200, answer
        records = await gw.records(gw.names.cart_events, until=1)
    assert len(records) == 1
    _, key, value = records[0]
    assert key == b"acme:c1a2b3d4e5f60718293a4b5c6d7e8f90"
    jsonschema.Draft202012Validator(record_schema(CartUpdated)).validate(value)
    assert value["type"] == "cart_updated"
    assert value["event_id"] == "wh-1"
    assert value["platform"] == "shopify"
    assert value["occurred_at"] == "2026-11-02T15:01:30Z"
    assert (value["currency"], value["total"], value["subtotal"]) == ("USD", "249.90", "229.90")
    assert (value["presentment_currency"], value["presentment_total"]) == ("CAD", "341.36")
    assert value["contact"]["customer_id"] == "7201234567"
    assert value["contact"]["email_consent"] is True
    assert value["contact"]["sms_consent"] is True
    assert value["customer"] == {"orders_count": 3, "total_spent": "412.50"}
    shipping = {"country_code": "US", "province_code": "NY", "zip": "11201"}
    assert value["shipping_address"] == shipping
    assert value["line_items"][0]["variant_id"] == "44120117149"
    assert value["recovery_url"].startswith("https://acme-coffee.myshopify.com/")
    assert "Analytical" not in json.dumps(value), "street lines must not travel"


async def test_order_lands_as_cart_completed(broker, policy):
    body = fixture_bytes("shopify_order.json")
    async with running_gateway(broker.bootstrap, policy) as gw:
        status, _ = await post(
            gw.url + "/webhooks/shopify", body, shopify_headers(body, "orders/paid", "wh-o1")
        )
        assert status == 200
        records = await gw.until(gw.names.cart_events, having("event_id", ["wh-o1"]))
    assert {r.value["event_id"] for r in records} == {"wh-o1"}
    _, _, key, value = records[0]
    jsonschema.Draft202012Validator(record_schema(CartCompleted)).validate(value)
    assert key == b"acme:c1a2b3d4e5f60718293a4b5c6d7e8f90"
    assert value["type"] == "cart_completed"
    assert value["order_id"] == "5550001234"
    assert value["discounts"] == [{"code": "COMEBACK10", "amount": "22.99"}]
    assert value["contact"]["email"] == "ada.lovelace@example.com"
    assert value["total"] == "224.91"


async def test_a_malformed_discount_entry_is_400_and_kept_on_the_dead_letter_topic(broker, policy):
    order = fixture_json("shopify_order_multicurrency.json")
    order["discount_codes"][1]["amount"] = "8,30"
    body = json.dumps(order).encode()
    async with running_gateway(broker.bootstrap, policy) as gw:
        status, answer = await post(
            gw.url + "/webhooks/shopify", body, shopify_headers(body, "orders/create", "wh-d1")
        )
        dead = await gw.until(gw.names.ingest_dlq, having("reason", ["invalid_amount"]))
    assert status == 400 and answer["error"] == "invalid_amount"
    assert answer["detail"].startswith("discount_codes[1].amount")
    assert json.loads(dead[0].value["body"]) == order, "nothing lost: the whole delivery kept"


async def test_forged_hmac_is_401_dead_lettered_and_not_produced(broker, policy):
    body = fixture_bytes("shopify_checkout.json")
    forged = shopify_headers(body, "checkouts/update", "wh-forged", secret="not-the-secret")
    good = fixture_bytes("shopify_order.json")
    async with running_gateway(broker.bootstrap, policy) as gw:
        status, answer = await post(gw.url + "/webhooks/shopify", body, forged)
        assert status == 401
        assert answer["error"] == "bad_signature"
        # A valid delivery after the forged one: the only record on cart-events.
        status, _ = await post(
            gw.url + "/webhooks/shopify", good, shopify_headers(good, "orders/paid", "wh-ok")
        )
        assert status == 200
        # Both bodies name checkout c1a2...: one key, one partition, so had the forged one
        # been produced it would be read before the valid one.
        cart = await gw.until(gw.names.cart_events, having("event_id", ["wh-ok"]))
        dlq = await gw.until(gw.names.ingest_dlq, having("reason", ["bad_signature"]))
    assert {r.value["event_id"] for r in cart} == {"wh-ok"}
    assert {r.value["reason"] for r in dlq} == {"bad_signature"}
    _, _, dlq_key, dead = dlq[0]
    assert dlq_key == b"acme"
    assert dead["reason"] == "bad_signature" and dead["status"] == 401
    assert dead["store"] == "acme"
    assert "X-Shopify-Hmac-Sha256" not in dead["headers"]
    assert dead["headers"]["X-Shopify-Topic"] == "checkouts/update"
    assert json.loads(dead["body"])["token"] == "c1a2b3d4e5f60718293a4b5c6d7e8f90"


async def test_previous_secret_still_accepted_during_rotation(broker, policy):
    body = fixture_bytes("shopify_checkout.json")
    headers = shopify_headers(body, "checkouts/create", "wh-rot", secret=SHOPIFY_OLD_SECRET)
    async with running_gateway(broker.bootstrap, policy) as gw:
        status, _ = await post(gw.url + "/webhooks/shopify", body, headers)
    assert status == 200


def _count(event_id: str, times: int):
    def done(records: Records) -> bool:
        return sum(r.value["event_id"] == event_id for r in records) >= times

    return done


async def test_same_webhook_twice_gives_two_records_with_one_event_id(broker, policy):
    body = fixture_bytes("shopify_checkout.json")
    headers = shopify_headers(body, "checkouts/update", "wh-dup")
    async with running_gateway(broker.bootstrap, policy) as gw:
        first = await post(gw.url + "/webhooks/shopify", body, headers)
        second = await post(gw.url + "/webhooks/shopify", body, headers)
        assert first[0] == second[0] == 200
        records = await gw.until(gw.names.cart_events, _count("wh-dup", 2))
    assert len(records) >= 2
    assert {r.value["event_id"] for r in records} == {"wh-dup"}, "the delivery id travels"
    assert len({(r.key, r.partition) for r in records}) == 1, "one partition: stage A sees both"


def _everywhere(event_id: str, partitions: int, also: str | None = None):
    """``done``: ``event_id`` on every partition (and ``also`` somewhere)."""

    def done(records: Records) -> bool:
        spread = {r.partition for r in records if r.value["event_id"] == event_id}
        seen_also = also is None or any(r.value["event_id"] == also for r in records)
        return len(spread) >= partitions and seen_also

    return done


async def test_privacy_topics(broker, policy):
    redact = json.dumps(
        {
            "shop_id": 954889,
            "shop_domain": "acme-coffee.myshopify.com",
            "customer": {"id": 7201234567, "email": "ada@example.com", "phone": "555-0100"},
            "orders_to_redact": [5550001234],
        }
    ).encode()
    asked = json.dumps(
        {
            "shop_id": 954889,
            "customer": {"id": 7201234567, "email": "ada@example.com"},
            "orders_requested": [5550001234],
            "data_request": {"id": 9999},
        }
    ).encode()
    shop = json.dumps({"shop_id": 954889, "shop_domain": "acme-coffee.myshopify.com"}).encode()
    url_path = "/webhooks/shopify"
    async with running_gateway(broker.bootstrap, policy, partitions=3) as gw:
        results = await asyncio.gather(
            post(gw.url + url_path, redact, shopify_headers(redact, "customers/redact", "p1")),
            post(gw.url + url_path, asked, shopify_headers(asked, "customers/data_request", "p2")),
            post(gw.url + url_path, shop, shopify_headers(shop, "shop/redact", "p3")),
        )
        assert [status for status, _ in results] == [200, 200, 200]
        shopper = await gw.until(gw.names.shopper_events, _everywhere("p3", 3, also="p1"))
        cart = await gw.until(gw.names.cart_events, _everywhere("p3", 3))
        audit = await gw.until(gw.names.ingest_dlq, having("event_id", ["p2"]))
    assert {r.value["type"] for r in shopper} == {"shopper_redacted", "store_redacted"}
    store_wide = {r.partition for r in shopper if r.value["type"] == "store_redacted"}
    assert store_wide == {0, 1, 2}, "shop/redact reaches every partition of shopper-events"
    redacted = next(r for r in shopper if r.value["type"] == "shopper_redacted")
    jsonschema.Draft202012Validator(record_schema(ShopperRedacted)).validate(redacted.value)
    assert redacted.key == shopper_key("acme", "7201234567").encode()
    assert {r.partition for r in cart} == {0, 1, 2}, "and every partition of cart-events"
    for record in cart:
        jsonschema.Draft202012Validator(record_schema(StoreRedacted)).validate(record.value)
    assert {r.value["event_id"] for r in audit} == {"p2"}
    _, _, audit_key, audit_value = audit[0]
    assert audit_value["reason"] == "data_request"
    assert audit_value["shopper"] == shopper_key("acme", "7201234567")
    assert b"ada@example.com" not in audit_key
    assert "ada@example.com" not in json.dumps(audit_value)
    assert loads(json.dumps(audit_value))["request_id"] == "9999"
