"""Hypothesis over every route the gateway serves: forged, signed-but-poisoned, oversized,
non-UTF-8 and control-byte bodies and headers. Whatever comes in: no 5xx; a refusal is a 4xx
with a reason, counted, and dead-lettered (except what the HTTP parser refuses before any
route: counted only); nothing the gateway knows as a secret, and no contact of the payloads,
appears in an answer or a log line (invariants 5 and 9)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.signatures import twilio_signature
from tests.gateway.helpers import (
    BC_SECRET,
    GENERIC_TOKEN,
    SHOP_DOMAIN,
    SHOPIFY_SECRET,
    STORE_NUMBER,
    TWILIO_TOKEN,
    WOO_SECRET,
    fixture_json,
    sign,
)
from tests.gateway.hostile import Hostile, hostile_gateway
from tests.gateway.test_hostile_http import CONTACTS, SECRETS

MAX_BODY = 16 * 1024
TWILIO_URL = "http://127.0.0.1/webhooks/twilio/inbound"  # as the gateway sees it


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[Hostile]:
    with hostile_gateway(tmp_path_factory.mktemp("fuzz"), max_body=MAX_BODY) as running:
        yield running


# -- what is sent ------------------------------------------------------------------------------

hostile_text = st.sampled_from(
    ["", " ", "²", "٣", "9" * 5000, "1e400", "-1", "NaN", "12.345", "1_000", "0x10",
     "http://[x", "ada.lovelace@example.com", "+1 (212) 555-0100", "\x00", "\u202e",
     "caf\udce9", "USD", "usd", "XAU", "2026-13-45"]
)  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | hostile_text
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
header_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")) | (
    st.sampled_from(
        [
            b"",
            b"http://[x",
            b"\xff\xfe",
            b"caf\xe9",
            b"a\x00b",
            b"\x7f\x01",
            "²".encode(),
            b"9" * 9000,
            b"application/json; charset=\xff",
            b"Bearer " + GENERIC_TOKEN.encode() + b"\x01",
        ]
    )
)
header_names = st.sampled_from(
    [b"Content-Type", b"X-Shopify-Topic", b"X-Shopify-Shop-Domain", b"X-Shopify-Hmac-Sha256",
     b"X-Shopify-Webhook-Id", b"X-Shopify-Triggered-At", b"X-WC-Webhook-Source",
     b"X-WC-Webhook-Topic", b"X-WC-Webhook-Signature", b"X-WC-Webhook-Delivery-ID",
     b"Authorization", b"X-Cartbands-Store", b"X-Cartbands-Hmac-Sha256", b"X-Cartbands-Secret",
     b"X-Twilio-Signature", b"Content-Length", b"Transfer-Encoding", b"X-Bad Name", b"X-\xff",
     b"X-Note", b"Host"]
)  # fmt: skip


def _mutate(base: Any, changes: list[tuple[list[str], Any]]) -> Any:
    """``base`` with each (path, value) set, where the path exists as far as it goes."""
    out = copy.deepcopy(base)
    for path, value in changes:
        node = out
        for key in path[:-1]:
            if isinstance(node, dict) and isinstance(node.get(key), dict | list):
                node = node[key]
            elif isinstance(node, list) and node and key == "0":
                node = node[0]
            else:
                break
        if isinstance(node, dict):
            node[path[-1]] = value
    return out


PATHS = {
    "shopify": [["total_price"], ["currency"], ["presentment_currency"], ["token"],
                ["total_price_set", "shop_money", "amount"],
                ["total_price_set", "shop_money", "currency_code"],
                ["line_items", "0", "quantity"], ["line_items", "0", "price"],
                ["customer", "orders_count"], ["customer", "total_spent"], ["updated_at"],
                ["shipping_lines"], ["customer"], ["email"], ["checkout_token"], ["id"]],
    "events": [["total"], ["currency"], ["store"], ["type"], ["occurred_at"], ["line_items"],
               ["customer"], ["subtotal"], ["presentment_total"], ["contact"]],
    "woocommerce": [["total"], ["currency"], ["status"], ["id"], ["date_paid_gmt"],
                    ["billing"], ["meta_data"], ["coupon_lines"]],
    "bigcommerce": [["cart_amount"], ["base_amount"], ["currency"], ["line_items"], ["id"],
                    ["updated_time"], ["email"]],
}  # fmt: skip
GENERIC_EVENT = {
    "type": "cart_updated", "store": "acme", "checkout": "c-fuzz", "event_id": "e-fuzz",
    "occurred_at": "2026-11-02T10:00:00Z", "currency": "USD", "total": "310.00",
    "contact": {"email": "ada.lovelace@example.com", "phone": "+12125550100"},
    "line_items": [{"title": "t", "quantity": 1, "price": "310.00"}],
}  # fmt: skip
WOO_ORDER = {
    "id": 7, "status": "completed", "currency": "EUR", "total": "99.00",
    "date_paid_gmt": "2026-11-02T10:00:00", "billing": {"email": "cy@example.com"},
}  # fmt: skip
BC_CART = {
    "id": "c9", "customer_id": 0, "currency": {"code": "EUR"}, "cart_amount": 19.99,
    "email": "cy@example.com",
    "line_items": {"physical_items": [{"name": "x", "quantity": 1, "list_price": 19.99}]},
}  # fmt: skip
BC_HOOK = {"created_at": 1793631600, "producer": "stores/abc123", "scope": "store/cart/abandoned",
           "hash": "h-fuzz", "data": {"type": "cart", "id": "c9"}}  # fmt: skip


def _changes(kind: str) -> st.SearchStrategy[list[tuple[list[str], Any]]]:
    return st.lists(st.tuples(st.sampled_from(PATHS[kind]), json_values), max_size=3)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, list[tuple[bytes, bytes]], bytes, Any]:
    """(path, headers, body, BigCommerce API answer) of one hostile request."""
    route = draw(st.sampled_from(["shopify", "events", "woocommerce", "bigcommerce", "twilio"]))
    api_answer: Any = None
    if route == "twilio":
        form = {"MessageSid": "SMf", "From": "+1 (212) 555-0100", "To": STORE_NUMBER,
                "Body": draw(st.sampled_from(["STOP", "stop all", "hello", ""]))}  # fmt: skip
        for name in draw(st.lists(st.sampled_from(list(form)), max_size=2)):
            form[name] = draw(st.text(max_size=12) | hostile_text)
        body = urlencode(form, errors="surrogatepass").encode()
    elif route == "bigcommerce":
        hook = _mutate(BC_HOOK, draw(st.lists(st.tuples(
            st.sampled_from([["scope"], ["producer"], ["hash"], ["data", "id"], ["created_at"]]),
            json_values), max_size=2)))  # fmt: skip
        body = json.dumps(hook).encode()
        api_answer = draw(st.none() | _changes("bigcommerce").map(lambda c: _mutate(BC_CART, c)))
    else:
        base = {
            "shopify": fixture_json(draw(st.sampled_from(["shopify_checkout.json",
                                                          "shopify_order.json"]))),
            "events": GENERIC_EVENT,
            "woocommerce": WOO_ORDER,
        }[route]  # fmt: skip
        body = json.dumps(_mutate(base, draw(_changes(route)))).encode()
    shape = draw(st.sampled_from(["as is", "as is", "binary", "oversized", "empty"]))
    if shape == "binary":
        body = draw(st.binary(max_size=300))
    elif shape == "oversized":
        body = body + b" " * (MAX_BODY + 1 - len(body)) + draw(st.binary(max_size=2000))
    elif shape == "empty":
        body = b""
    signed = draw(st.sampled_from(["signed", "signed", "forged", "unsigned"]))
    headers = _headers(route, body, signed)
    mangled = st.lists(st.tuples(header_names, header_bytes), min_size=1, max_size=3)
    for name, value in draw(st.just([]) | mangled):
        headers = [h for h in headers if h[0].lower() != name.lower()] + [(name, value)]
    path = {"twilio": "/webhooks/twilio/inbound", "events": "/events"}.get(
        route, f"/webhooks/{route}"
    )
    return path, headers, body, api_answer


def _headers(route: str, body: bytes, signed: str) -> list[tuple[bytes, bytes]]:
    def mac(secret: str) -> bytes:
        return {"signed": sign(body, secret), "forged": sign(body, "guess")}.get(
            signed, ""
        ).encode()

    json_type = (b"Content-Type", b"application/json")
    if route == "shopify":
        topic = b"checkouts/update" if b'"token"' in body else b"orders/create"
        return [json_type, (b"X-Shopify-Topic", topic),
                (b"X-Shopify-Shop-Domain", SHOP_DOMAIN.encode()),
                (b"X-Shopify-Hmac-Sha256", mac(SHOPIFY_SECRET)),
                (b"X-Shopify-Webhook-Id", b"wh-fuzz")]  # fmt: skip
    if route == "woocommerce":
        return [json_type, (b"X-WC-Webhook-Source", b"https://shop.acme.example/"),
                (b"X-WC-Webhook-Topic", b"order.updated"),
                (b"X-WC-Webhook-Signature", mac(WOO_SECRET)),
                (b"X-WC-Webhook-Delivery-ID", b"1")]  # fmt: skip
    if route == "bigcommerce":
        secret = {"signed": BC_SECRET, "forged": "guess"}.get(signed, "")
        return [json_type, (b"X-Cartbands-Secret", secret.encode())]
    if route == "events":
        token = {"signed": GENERIC_TOKEN, "forged": "guess"}.get(signed, "")
        return [json_type, (b"Authorization", b"Bearer " + token.encode())]
    form_type = (b"Content-Type", b"application/x-www-form-urlencoded")
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        params = []
    token = {"signed": TWILIO_TOKEN, "forged": "guess"}.get(signed)
    signature = twilio_signature(TWILIO_URL, params, token.encode()) if token else ""
    return [form_type, (b"X-Twilio-Signature", signature.encode())]


# -- the property ------------------------------------------------------------------------------


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(request=requests())
def test_no_input_gets_a_5xx_and_every_refusal_is_answered_counted_and_dead_lettered(gw, request):
    path, headers, body, api_answer = request
    gw.api.resource = api_answer
    dead = len(gw.dead_letters())
    refused = gw.count("cartbands_gateway_rejections_total")
    lines = len(gw.logs.lines)
    answer = gw.send(path, headers, body)
    assert answer.status < 500, answer.body[:300]
    reason = answer.json()["error"] if answer.status >= 400 else "accepted"
    event(f"{path} {answer.status} {reason}")  # --hypothesis-show-statistics: what was hit
    if answer.status >= 400:
        assert reason and answer.json()["detail"], answer.body
        assert gw.count("cartbands_gateway_rejections_total") == refused + 1
        assert len(gw.dead_letters()) == dead + (0 if reason == "bad_http" else 1), reason
    else:
        assert answer.status == 200, answer.body[:300]
    texts = [answer.body.decode("utf-8", "replace").lower()]
    texts += [line.lower() for line in gw.logs.lines[lines:]]
    for text in texts:
        for word in SECRETS + CONTACTS:
            assert word.lower() not in text, (word, text[:300])
