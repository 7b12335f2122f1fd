"""Hostile requests: never a 5xx; refusals answered with a reason, dead-lettered, counted;
no secret and no contact in any answer or log line (invariants 5 and 9). No broker: the
gateway's output is in memory (see hostile.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from gateway.signatures import twilio_signature
from tests.gateway.helpers import (
    BC_SECRET,
    GENERIC_HMAC,
    GENERIC_TOKEN,
    SHOP_DOMAIN,
    SHOPIFY_OLD_SECRET,
    SHOPIFY_SECRET,
    STORE_NUMBER,
    TWILIO_TOKEN,
    WOO_SECRET,
    fixture_bytes,
    fixture_json,
    sign,
)
from tests.gateway.hostile import Hostile, hostile_gateway

SECRETS = [SHOPIFY_SECRET, SHOPIFY_OLD_SECRET, WOO_SECRET, GENERIC_TOKEN, GENERIC_HMAC,
           TWILIO_TOKEN, BC_SECRET]  # fmt: skip
CONTACTS = ["ada.lovelace@example.com", "2125550100", "555-0100", "cy@example.com"]
JSON_TYPE = (b"Content-Type", b"application/json")


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[Hostile]:
    with hostile_gateway(tmp_path_factory.mktemp("hostile")) as running:
        yield running


def assert_nothing_leaked(gw: Hostile, answers: int = 0, lines: int = 0) -> None:
    """No configured secret and no contact of the fixtures in any answer or log line (from
    the ``answers``-th answer and the ``lines``-th line on)."""
    texts = [a.body.decode("utf-8", "replace").lower() for a in gw.answers[answers:]]
    texts += [line.lower() for line in gw.logs.lines[lines:]]
    for text in texts:
        for word in SECRETS + CONTACTS:
            assert word.lower() not in text, (word, text[:300])


def shopify(body: bytes, topic: str = "checkouts/update", **extra: bytes) -> list:
    headers = [
        JSON_TYPE,
        (b"X-Shopify-Topic", topic.encode()),
        (b"X-Shopify-Shop-Domain", SHOP_DOMAIN.encode()),
        (b"X-Shopify-Hmac-Sha256", sign(body, SHOPIFY_SECRET).encode()),
        (b"X-Shopify-Webhook-Id", b"wh-hostile"),
    ]
    return headers + [(name.replace("_", "-").encode(), value) for name, value in extra.items()]


def _refused_and_recorded(
    gw: Hostile, send: Any, status: int, reason: str, *others: str
) -> dict[str, Any]:
    """Send; the answer must be ``status`` and ``reason`` (or one of ``others``), with one
    more dead letter and one more counted rejection. Returns the dead letter."""
    dead, counted = len(gw.dead_letters()), gw.count("cartbands_gateway_rejections_total")
    answer = send()
    assert answer.status == status, answer.body
    assert answer.json()["error"] in (reason, *others), answer.body
    assert gw.count("cartbands_gateway_rejections_total") == counted + 1
    letters = gw.dead_letters()
    assert len(letters) == dead + 1
    return letters[-1]


# -- rows of issue 14: each failed before ------------------------------------------------------


def test_a_non_utf8_header_byte_on_a_refused_request_is_a_dead_lettered_4xx(gw):
    """Was an aiohttp 500, no dead letter, no metric (the header could not be JSON-encoded)."""
    body = fixture_bytes("shopify_checkout.json")
    headers = shopify(body, X_Shopify_Hmac_Sha256=b"forged", X_Note=b"caf\xe9 \xff\xfe")
    headers = [h for h in headers if h[0] != b"X-Shopify-Hmac-Sha256"] + [
        (b"X-Shopify-Hmac-Sha256", b"Zm9yZ2Vk")
    ]
    letter = _refused_and_recorded(
        gw, lambda: gw.send("/webhooks/shopify", headers, body), 401, "bad_signature"
    )
    assert letter["headers"]["X-Note"] == "caf\ufffd \ufffd\ufffd"


def test_an_unparsable_woocommerce_source_is_refused_as_unknown(gw):
    """``X-WC-Webhook-Source: http://[x`` was a 500 before authentication (urlsplit)."""
    body = json.dumps({"id": 1, "status": "completed"}).encode()
    headers = [
        JSON_TYPE,
        (b"X-WC-Webhook-Source", b"http://[x"),
        (b"X-WC-Webhook-Topic", b"order.updated"),
        (b"X-WC-Webhook-Signature", sign(body, WOO_SECRET).encode()),
        (b"X-WC-Webhook-Delivery-ID", b"9"),
    ]
    letter = _refused_and_recorded(
        gw, lambda: gw.send("/webhooks/woocommerce", headers, body), 401, "bad_signature"
    )
    assert letter["reason"] == "unknown_store"


@pytest.mark.parametrize("count", ["²", "٣", "9" * 5000, "1_000", str(2**70)])
@pytest.mark.parametrize("field", ["quantity", "orders_count"])
def test_a_signed_shopify_count_that_int_cannot_take_is_a_400(gw, field, count):
    """``"²"`` passed ``isdigit()`` and 4,301+ digits exceed int()'s limit: both were 500s."""
    payload = fixture_json("shopify_checkout.json")
    if field == "quantity":
        payload["line_items"][0]["quantity"] = count
    else:
        payload["customer"]["orders_count"] = count
    body = json.dumps(payload).encode()
    letter = _refused_and_recorded(
        gw, lambda: gw.send("/webhooks/shopify", shopify(body), body), 400, "invalid_field"
    )
    assert field in letter["detail"]


POISON = ["1e400", "1" * 30, "9" * 5000, "NaN", "-5.00", "12.345", "0x10", "١٢"]


@pytest.mark.parametrize("total", POISON)
def test_a_poison_shopify_total_is_refused_with_the_reason(gw, total):
    """``1e400``, 30- or 5,000-digit totals were accepted; the core then stuck the shopper."""
    payload = fixture_json("shopify_checkout.json")
    payload["total_price"] = total
    payload["total_price_set"]["shop_money"]["amount"] = total
    body = json.dumps(payload).encode()
    letter = _refused_and_recorded(
        gw, lambda: gw.send("/webhooks/shopify", shopify(body), body), 400, "invalid_amount"
    )
    assert letter["detail"].startswith("total_price")
    assert total[:40] not in letter["detail"], "the detail names the rule, not the value"


@pytest.mark.parametrize("total", POISON)
def test_a_poison_generic_total_is_refused_with_the_reason(gw, total):
    event = {
        "type": "cart_updated",
        "store": "acme",
        "checkout": "c-poison",
        "event_id": "e-poison",
        "occurred_at": "2026-11-02T10:00:00Z",
        "currency": "USD",
        "total": total,
    }
    body = json.dumps(event).encode()
    headers = [JSON_TYPE, (b"Authorization", f"Bearer {GENERIC_TOKEN}".encode())]
    # the records' schema already refuses what is no plain decimal (invalid_field)
    letter = _refused_and_recorded(
        gw, lambda: gw.send("/events", headers, body), 400, "invalid_amount", "invalid_field"
    )
    assert letter["detail"].startswith("total: ")


def test_a_poison_woocommerce_total_is_refused_with_the_reason(gw):
    order = {"id": 7, "status": "completed", "currency": "EUR", "total": "1" * 30,
             "date_paid_gmt": "2026-11-02T10:00:00"}  # fmt: skip
    body = json.dumps(order).encode()
    headers = [
        JSON_TYPE,
        (b"X-WC-Webhook-Source", b"https://shop.acme.example/"),
        (b"X-WC-Webhook-Topic", b"order.updated"),
        (b"X-WC-Webhook-Signature", sign(body, WOO_SECRET).encode()),
        (b"X-WC-Webhook-Delivery-ID", b"77"),
    ]
    _refused_and_recorded(
        gw, lambda: gw.send("/webhooks/woocommerce", headers, body), 400, "invalid_amount"
    )


def test_a_control_character_in_a_header_leaks_no_secret(gw):
    """aiohttp's parser error quoted the raw header block (Authorization, X-Cartbands-Secret
    included) in its 400 body and its log line."""
    counted = gw.count("cartbands_gateway_rejections_total")
    headers = [
        JSON_TYPE,
        (b"Authorization", f"Bearer {GENERIC_TOKEN}".encode()),
        (b"X-Cartbands-Secret", BC_SECRET.encode()),
        (b"X-Cartbands-Store", b"acme\x01"),
    ]
    answer = gw.send("/events", headers, b"{}")
    assert answer.status == 400
    assert answer.json()["error"] == "bad_http"
    assert gw.count("cartbands_gateway_rejections_total") == counted + 1
    assert_nothing_leaked(gw)


def test_an_unknown_shop_is_answered_as_a_bad_signature(gw):
    """Was a 404 before any signature check, telling a caller which shops are configured."""
    body = fixture_bytes("shopify_checkout.json")
    unknown = [h for h in shopify(body) if h[0] != b"X-Shopify-Shop-Domain"]
    unknown.append((b"X-Shopify-Shop-Domain", b"nobody.myshopify.com"))
    forged = [h for h in shopify(body) if h[0] != b"X-Shopify-Hmac-Sha256"]
    forged.append((b"X-Shopify-Hmac-Sha256", sign(body, "guess").encode()))
    one = gw.send("/webhooks/shopify", unknown, body)
    other = gw.send("/webhooks/shopify", forged, body)
    assert (one.status, one.body) == (other.status, other.body)
    assert one.status == 401
    assert gw.dead_letters()[-2]["reason"] == "unknown_store"


def test_an_unhandled_shopify_topic_is_accepted_ignored_and_counted(gw):
    """``checkouts/delete`` was a 400: Shopify retries it and may drop the subscription."""
    body = json.dumps({"id": 1, "token": "t"}).encode()
    before = len(gw.output.sent), gw.count("cartbands_gateway_ignored_total")
    answer = gw.send("/webhooks/shopify", shopify(body, "checkouts/delete"), body)
    assert answer.status == 200 and answer.json() == {"accepted": 0, "ignored": "unhandled_topic"}
    assert len(gw.output.sent) == before[0], "nothing produced, nothing dead-lettered"
    assert gw.count("cartbands_gateway_ignored_total") == before[1] + 1
    forged = [h for h in shopify(body, "checkouts/delete") if h[0] != b"X-Shopify-Hmac-Sha256"]
    forged.append((b"X-Shopify-Hmac-Sha256", b"Zm9yZ2Vk"))
    assert gw.send("/webhooks/shopify", forged, body).status == 401, "still authenticated"


def test_twilio_stop_leaks_no_phone(gw):
    url = "http://127.0.0.1/webhooks/twilio/inbound"  # as the gateway sees it (Host header)
    form = {"MessageSid": "SMh", "From": "+1 (212) 555-0100", "To": STORE_NUMBER, "Body": "STOP"}
    body = urlencode(form).encode()
    signature = twilio_signature(url, parse_qsl(body.decode()), TWILIO_TOKEN.encode())
    headers = [
        (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"X-Twilio-Signature", signature.encode()),
    ]
    answer = gw.send("/webhooks/twilio/inbound", headers, body)
    assert answer.status == 200, answer.body
    assert gw.output.sent[-1].value["type"] == "consent_changed"
    assert_nothing_leaked(gw)


@pytest.mark.parametrize(
    "change",
    [{"contact": "ada.lovelace@example.com"}, {"ada.lovelace@example.com": 1},
     {"shipping_address": {"zip": ["ada.lovelace@example.com"]}},
     {"occurred_at": "ada.lovelace@example.com"}, {"total": "ada.lovelace@example.com"}],
)  # fmt: skip
def test_a_refusal_names_the_field_never_its_value(gw, change):
    """The records' schema messages quoted the value: a contact in the wrong field came back
    in the 400 and went to the log."""
    event = {
        "type": "cart_updated",
        "store": "acme",
        "checkout": "c",
        "event_id": "e",
        "occurred_at": "2026-11-02T10:00:00Z",
        "currency": "USD",
        "total": "1.00",
    }
    event.update(change)
    body = json.dumps(event).encode()
    headers = [JSON_TYPE, (b"Authorization", f"Bearer {GENERIC_TOKEN}".encode())]
    answers, lines = len(gw.answers), len(gw.logs.lines)
    answer = gw.send("/events", headers, body)
    assert answer.status == 400 and answer.json()["error"] == "invalid_field"
    assert_nothing_leaked(gw, answers, lines)


def test_unused_bigcommerce_and_woocommerce_topics_are_accepted_once_verified(gw):
    """A refused scope (was a 400, before authentication) is retried and, repeated, disables
    the hook on both platforms."""
    hook = {"created_at": 1793631600, "producer": "stores/abc123", "scope": "store/product/updated",
            "hash": "h-product", "data": {"type": "product", "id": 5}}  # fmt: skip
    body = json.dumps(hook).encode()
    woo = json.dumps({"id": 5, "name": "Mug"}).encode()

    def woo_headers(signature: str) -> list:
        return [JSON_TYPE, (b"X-WC-Webhook-Source", b"https://shop.acme.example/"),
                (b"X-WC-Webhook-Topic", b"product.updated"),
                (b"X-WC-Webhook-Signature", signature.encode())]  # fmt: skip

    before = len(gw.output.sent), gw.count("cartbands_gateway_ignored_total")
    answers = [
        gw.send("/webhooks/bigcommerce", [JSON_TYPE, (b"X-Cartbands-Secret", BC_SECRET.encode())],
                body),
        gw.send("/webhooks/woocommerce", woo_headers(sign(woo, WOO_SECRET)), woo),
    ]  # fmt: skip
    for answer in answers:
        assert answer.status == 200 and answer.json()["ignored"] == "unhandled_topic"
    assert len(gw.output.sent) == before[0]
    assert gw.count("cartbands_gateway_ignored_total") == before[1] + 2
    forged = gw.send("/webhooks/bigcommerce", [JSON_TYPE, (b"X-Cartbands-Secret", b"guess")], body)
    assert forged.status == 401
    assert gw.send("/webhooks/woocommerce", woo_headers("Zm9yZ2Vk"), woo).status == 401


@pytest.mark.parametrize(
    ("scope", "data"),
    [("store/cart/abandoned", {"id": "../../v2/customers"}),
     ("store/cart/abandoned", {"id": "c9?x=1"}),
     ("store/order/created", {"id": "250/../1"}),
     ("store/cart/converted", {"id": "c9", "orderId": "²"})],
)  # fmt: skip
def test_a_bigcommerce_resource_id_must_be_an_id_not_a_path(gw, scope, data):
    """The hook's id went into the REST path as it was: another resource could be fetched
    with the store's token, and an id BigCommerce refused was a 503 (a 5xx for an input)."""
    hook = {"created_at": 1793631600, "producer": "stores/abc123", "scope": scope,
            "hash": "h-path", "data": {"type": "cart", **data}}  # fmt: skip
    body = json.dumps(hook).encode()
    headers = [JSON_TYPE, (b"X-Cartbands-Secret", BC_SECRET.encode())]
    gw.api.resource = None
    letter = _refused_and_recorded(
        gw, lambda: gw.send("/webhooks/bigcommerce", headers, body), 400, "invalid_field"
    )
    assert letter["detail"].startswith("data.")
