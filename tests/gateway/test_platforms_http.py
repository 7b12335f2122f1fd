"""Twilio, generic, WooCommerce and BigCommerce deliveries through a running gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
from aiohttp import web

from bus.kafka import reader
from config.policyfile import load_policy
from gateway.bigcommerce_api import BigCommerceApi
from gateway.cli import bound_port
from gateway.config import build_config
from gateway.signatures import twilio_signature
from recovery.ids import shopper_key
from schemas.batches import records_of
from schemas.jsonschema import record_schema
from schemas.records import CartCompleted, CartUpdated, ConsentChanged
from tests.gateway.helpers import (
    BC_SECRET,
    BC_TOKEN,
    ENV,
    GENERIC_HMAC,
    GENERIC_TOKEN,
    STORE_NUMBER,
    TWILIO_TOKEN,
    WOO_SECRET,
    having,
    post,
    running_gateway,
    sign,
    write_policy,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def policy(tmp_path):
    return write_policy(tmp_path / "policy.yaml")


def _twilio(url: str, text: str, sid: str, token: str = TWILIO_TOKEN) -> tuple[bytes, dict]:
    params = {
        "MessageSid": sid,
        "AccountSid": "AC0123",
        "From": "+1 212 555 0199",
        "To": STORE_NUMBER,
        "Body": text,
        "NumMedia": "0",
    }
    signature = twilio_signature(url, params.items(), token.encode())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    }
    return urlencode(params).encode(), headers


async def test_twilio_stop_and_start_become_consent_changes(broker, policy):
    async with running_gateway(broker.bootstrap, policy) as gw:
        url = gw.url + "/webhooks/twilio/inbound"
        answers = []
        for text, sid in (
            ("  stop ", "SM1"),
            ("Hello, is this the shop?", "SM2"),
            ("START", "SM3"),
        ):
            body, headers = _twilio(url, text, sid)
            answers.append(await post(url, body, headers))
        forged_body, forged = _twilio(url, "STOP", "SM4", token="wrong")
        forged_answer = await post(url, forged_body, forged)
        records = await gw.until(
            gw.names.shopper_events, having("event_id", ["twilio:SM1", "twilio:SM3"])
        )
        dead = await gw.until(gw.names.ingest_dlq, having("reason", ["bad_signature"]))
    assert [status for status, _ in answers] == [200, 200, 200]
    assert all("<Response></Response>" in text for _, text in answers)
    assert forged_answer[0] == 401
    assert (
        dead[0].value["route"] == "twilio" and "X-Twilio-Signature" not in dead[0].value["headers"]
    )
    # one phone, one key, one partition: in order, and no record for the chat or the forgery
    assert {r.value["event_id"] for r in records} == {"twilio:SM1", "twilio:SM3"}
    validator = jsonschema.Draft202012Validator(record_schema(ConsentChanged))
    for record in records:
        validator.validate(record.value)
        assert record.key == shopper_key("acme", phone="+1 212 555 0199").encode()
    by_id = {r.value["event_id"]: r.value for r in records}
    stop, start = by_id["twilio:SM1"], by_id["twilio:SM3"]
    assert (stop["channel"], stop["granted"], stop["source"]) == ("all", False, "sms_stop")
    assert stop["phone"] == "+12125550199"
    assert (start["channel"], start["granted"]) == ("sms", True)


def _cart(event_id: str, checkout: str = "gen-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "cart_updated",
        "store": "acme",
        "checkout": checkout,
        "event_id": event_id,
        "occurred_at": "2026-11-02T15:00:00+01:00",
        "currency": "EUR",
        "total": "64.00",
        "contact": {"email": "bo@example.com", "email_consent": True},
        **extra,
    }


async def test_generic_events_array_with_bearer_token(broker, policy):
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"}
    batch = json.dumps([_cart("g1"), _cart("g2", "gen-2")]).encode()
    missing_total = json.dumps([_cart("g3"), {**_cart("g4"), "total": None}]).encode()
    float_money = json.dumps(_cart("g5", total=64.0)).encode()
    other_store = json.dumps(_cart("g6", store="globex")).encode()
    async with running_gateway(broker.bootstrap, policy) as gw:
        url = gw.url + "/events"
        ok = await post(url, batch, auth)
        missing = await post(url, missing_total, auth)
        floats = await post(url, float_money, auth)
        wrong = await post(url, other_store, {**auth, "X-Cartbands-Store": "acme"})
        no_auth = await post(url, batch, {"Content-Type": "application/json"})
        # gen-1 again: if a refused body (g3..g6, all gen-1) had been produced, it would be
        # in g7's partition before g7, so reading up to g7 shows it.
        single = json.dumps(_cart("g7", "gen-1")).encode()
        signed = {"Content-Type": "application/json", "X-Cartbands-Hmac-Sha256": ""}
        signed["X-Cartbands-Hmac-Sha256"] = sign(single, GENERIC_HMAC)
        by_hmac = await post(url, single, signed)
        signed["X-Cartbands-Hmac-Sha256"] = sign(single, GENERIC_TOKEN)
        bad_hmac = await post(url, single, signed)
        records = await gw.until(gw.names.cart_events, having("event_id", ["g1", "g2", "g7"]))
    assert ok == (200, {"accepted": 2})
    assert by_hmac == (200, {"accepted": 1})
    assert bad_hmac[0] == 401
    assert missing[0] == 400 and missing[1]["detail"] == "[1].total: required field is missing"
    assert floats[0] == 400 and floats[1]["detail"].startswith("total: must be")
    assert wrong[0] == 403
    assert no_auth[0] == 401
    validator = jsonschema.Draft202012Validator(record_schema(CartUpdated))
    for record in records:
        validator.validate(record.value)
    keys = {r.value["event_id"]: r.key for r in records}
    assert keys == {"g1": b"acme:gen-1", "g2": b"acme:gen-2", "g7": b"acme:gen-1"}
    assert {r.value["occurred_at"] for r in records} == {"2026-11-02T14:00:00Z"}


def _woo_headers(body: bytes, topic: str, delivery: str, secret: str = WOO_SECRET) -> dict:
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://shop.acme.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery,
        "X-WC-Webhook-Signature": sign(body, secret),
    }


def _woo_order(status: str) -> bytes:
    return json.dumps(
        {
            "id": 727,
            "status": status,
            "currency": "EUR",
            "total": "64.00",
            "cart_hash": "hash-of-cart",
            "date_created_gmt": "2026-11-02T15:20:00",
            "date_paid_gmt": "2026-11-02T15:21:00" if status != "pending" else None,
            "customer_id": 0,
            "billing": {"first_name": "Bo", "email": "bo@example.com", "address_1": "1 Road"},
            "coupon_lines": [
                {"id": 31, "code": "welcome5", "discount": "5.00", "discount_tax": "1.05"},
                {"id": 32, "code": "FREESHIP"},
            ],
            "meta_data": [{"id": 1, "key": "_cartbands_checkout", "value": "gen-1"}],
        }
    ).encode()


async def test_woocommerce_paid_order_converts_and_cart_plugin_events_pass(broker, policy):
    paid, pending = _woo_order("processing"), _woo_order("pending")
    cart = json.dumps(_cart("wc-cart-1", "gen-1")).encode()
    async with running_gateway(broker.bootstrap, policy) as gw:
        url = gw.url + "/webhooks/woocommerce"
        ping = await post(
            url, b"webhook_id=12", {"Content-Type": "application/x-www-form-urlencoded"}
        )
        first = await post(url, cart, _woo_headers(cart, "action.cartbands_cart", "d0"))
        second = await post(url, pending, _woo_headers(pending, "order.created", "d1"))
        third = await post(url, paid, _woo_headers(paid, "order.updated", "d2"))
        forged = await post(url, paid, _woo_headers(paid, "order.updated", "d3", secret="x"))
        records = await gw.until(gw.names.cart_events, having("event_id", ["wc-cart-1", "wc:d2"]))
    assert ping[0] == 200 and first[0] == 200 and third[0] == 200
    assert second == (200, {"accepted": 0, "ignored": "unpaid_order"})
    assert forged[0] == 401
    by_id = {r.value["event_id"]: r.value for r in records}
    assert set(by_id) == {"wc-cart-1", "wc:d2"}, "the unpaid order stands for no record"
    plugin, order = by_id["wc-cart-1"], by_id["wc:d2"]
    assert plugin["platform"] == "woocommerce" and plugin["event_id"] == "wc-cart-1"
    jsonschema.Draft202012Validator(record_schema(CartCompleted)).validate(order)
    assert (order["checkout"], order["order_id"], order["event_id"]) == ("gen-1", "727", "wc:d2")
    assert order["discounts"] == [{"code": "WELCOME5", "amount": "6.05"}, {"code": "FREESHIP"}]
    assert order["occurred_at"] == "2026-11-02T15:21:00Z"


class FakeBigCommerce:
    """A loopback stand-in for the BigCommerce REST API, failing on request."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.throttled: dict[str, int] = {}  # path -> X-Rate-Limit-Time-Reset-Ms, once
        self.calls: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stores/{hash}/v3/carts/{id}", self.cart)
        app.router.add_get("/stores/{hash}/v2/orders/{id}", self.order)
        app.router.add_get("/stores/{hash}/v2/orders/{id}/coupons", self.coupons)
        return app

    def _gate(self, request: web.Request) -> web.Response | None:
        self.calls.append(request.path)
        if request.headers.get("X-Auth-Token") != BC_TOKEN:
            return web.json_response({"title": "unauthorized"}, status=401)
        reset_ms = self.throttled.pop(request.path, None)
        if reset_ms is not None:
            headers = {
                "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Requests-Left": "0",
            }
            return web.json_response({"title": "Too many requests"}, status=429, headers=headers)
        left = self.failures.get(request.path, 0)
        if left:
            self.failures[request.path] = left - 1
            return web.json_response({"title": "busy"}, status=503)
        return None

    async def cart(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        if request.match_info["id"] == "gone":
            return web.json_response({"title": "not found"}, status=404)
        return web.json_response(
            {
                "data": {
                    "id": request.match_info["id"],
                    "customer_id": 42,
                    "email": "cy@example.com",
                    "currency": {"code": "USD"},
                    "base_amount": 310.5,
                    "cart_amount": 289.99,
                    "line_items": {
                        "physical_items": [
                            {"id": "li1", "product_id": 77, "variant_id": 770, "sku": "GR",
                             "name": "Grinder", "quantity": 1, "list_price": 310.5,
                             "sale_price": 289.99}
                        ],
                        "digital_items": [],
                        "custom_items": [],
                    },
                    "created_time": "2026-11-02T15:00:00+00:00",
                    "updated_time": "2026-11-02T15:05:00+00:00",
                },
                "meta": {},
            }
        )  # fmt: skip

    async def order(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        return web.json_response(
            {
                "id": int(request.match_info["id"]),
                "cart_id": "bc-cart-1",
                "currency_code": "USD",
                "total_inc_tax": "289.9900",
                "coupon_discount": "34.8000",
                "date_created": "Mon, 02 Nov 2026 15:30:00 +0000",
                "customer_id": 42,
                "billing_address": {"email": "cy@example.com", "street_1": "1 Main St"},
            }
        )

    async def coupons(self, request: web.Request) -> web.Response:
        """Per the v2 Order Coupons resource: the order's coupons, or 204 when it has none."""
        refused = self._gate(request)
        if refused is not None:
            return refused
        if request.headers.get("Accept") != "application/json":
            return web.json_response({"title": "not acceptable"}, status=406)
        order_id = int(request.match_info["id"])
        if order_id != 250:
            return web.Response(status=204)
        return web.json_response(
            [
                {"id": 3, "coupon_id": 12, "order_id": order_id, "code": "back12",
                 "amount": "12.0000", "type": 1, "discount": 34.8},
            ]
        )  # fmt: skip


@asynccontextmanager
async def fake_bigcommerce() -> AsyncIterator[tuple[str, FakeBigCommerce]]:
    fake = FakeBigCommerce()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}", fake
    finally:
        await runner.cleanup()


def _hook(scope: str, resource: str, delivery: str, **data: Any) -> bytes:
    return json.dumps(
        {
            "created_at": 1793631600,
            "store_id": "1025646",
            "producer": "stores/abc123",
            "scope": scope,
            "hash": delivery,
            "data": {"type": "cart" if "cart" in scope else "order", "id": resource, **data},
        }
    ).encode()


BC_HEADERS = {"Content-Type": "application/json", "X-Cartbands-Secret": BC_SECRET}


async def test_bigcommerce_thin_hooks_are_enriched_with_retries(broker, tmp_path):
    async with fake_bigcommerce() as (api_url, fake):
        policy = write_policy(tmp_path / "policy.yaml", bigcommerce_api=api_url)
        fake.failures["/stores/abc123/v3/carts/bc-cart-1"] = 2  # two 503s, then the cart
        async with running_gateway(broker.bootstrap, policy) as gw:
            url = gw.url + "/webhooks/bigcommerce"
            abandoned = _hook("store/cart/abandoned", "bc-cart-1", "h1")
            converted = _hook("store/cart/converted", "bc-cart-1", "h2", orderId=250)
            gone = _hook("store/cart/updated", "gone", "h3")
            first = await post(url, abandoned, BC_HEADERS)
            second = await post(url, converted, BC_HEADERS)
            third = await post(url, gone, BC_HEADERS)
            forged = await post(url, abandoned, {**BC_HEADERS, "X-Cartbands-Secret": "nope"})
            fake.failures["/stores/abc123/v3/carts/bc-cart-1"] = 10
            down = await post(url, abandoned, BC_HEADERS)
            records = await gw.until(gw.names.cart_events, having("event_id", ["h1", "h2"]))
            reasons = ["bad_signature", "cart_not_found", "enrichment_failed"]
            dead = await gw.until(gw.names.ingest_dlq, having("reason", reasons))
    assert first == (200, {"accepted": 1})
    assert second == (200, {"accepted": 1})
    assert third == (200, {"accepted": 0, "ignored": "cart_not_found"})
    assert forged[0] == 401
    assert down[0] == 503 and down[1]["error"] == "enrichment_failed"
    by_id = {r.value["event_id"]: r.value for r in records}
    assert set(by_id) == {"h1", "h2"}
    updated, completed = by_id["h1"], by_id["h2"]
    jsonschema.Draft202012Validator(record_schema(CartUpdated)).validate(updated)
    jsonschema.Draft202012Validator(record_schema(CartCompleted)).validate(completed)
    assert (updated["event_id"], updated["total"]) == ("h1", "289.99")
    assert updated["subtotal"] == "310.50", "a JSON number, rounded to the currency's cents"
    assert updated["line_items"][0]["price"] == "289.99"
    assert updated["contact"] == {"email": "cy@example.com", "customer_id": "42"}
    assert (completed["checkout"], completed["order_id"], completed["total"]) == (
        "bc-cart-1",
        "250",
        "289.9900",
    )
    assert completed["occurred_at"] == "2026-11-02T15:30:00Z"
    assert completed["discounts"] == [{"code": "BACK12", "amount": "34.80"}]
    assert "/stores/abc123/v2/orders/250/coupons" in fake.calls
    assert {r.value["reason"] for r in dead} == set(reasons)
    assert all("X-Cartbands-Secret" not in r.value["headers"] for r in dead)


async def test_health_and_metrics_pages(broker, policy):
    async with running_gateway(broker.bootstrap, policy) as gw:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.get(gw.url + "/healthz") as response:
                assert response.status == 200
            async with session.get(gw.url + "/readyz") as response:
                assert response.status == 200
            await asyncio.sleep(0)
            async with session.get(gw.url + "/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
    assert "cartbands_gateway_requests_total" in text


async def test_bigcommerce_api_waits_out_429_resets_and_paces_calls(tmp_path):
    """The enrichment client honours BigCommerce's 429 reset hint and its own per-store pace.
    (Only lower bounds on time: a loaded machine can make waits longer, never shorter.)"""
    async with fake_bigcommerce() as (api_url, fake):
        path = "/stores/abc123/v3/carts/c-1"
        policy = write_policy(tmp_path / "a.yaml", api_url)
        store = build_config(load_policy(policy), ENV).stores["acme"]
        api = BigCommerceApi(attempts=3, backoff=0.01, timeout=10.0)
        fake.throttled[path] = 400
        started = time.monotonic()
        cart = await api.get_cart(store, "c-1")
        waited = time.monotonic() - started
        await api.close()
        assert cart is not None and cart["id"] == "c-1"
        assert fake.calls == [path, path], "the 429 is retried"
        assert waited >= 0.4, "after the reset the API announced, not the 10 ms backoff"

        paced = write_policy(tmp_path / "b.yaml", api_url, "{per_second: 5, burst: 1}")
        store = build_config(load_policy(paced), ENV).stores["acme"]
        api = BigCommerceApi(attempts=1, timeout=10.0)
        started = time.monotonic()
        for n in range(4):
            assert await api.get_cart(store, f"c-{n}") is not None
        waited = time.monotonic() - started
        await api.close()
        assert waited >= 3 * 0.2 * 0.9, "5 calls/s with no burst: three waits of 200 ms"


async def test_one_requests_events_reach_their_partition_as_one_batch_message(broker, policy):
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"}
    events = [_cart(f"p{n}", "gen-packed", total=f"{60 + n}.00") for n in range(6)]
    async with running_gateway(broker.bootstrap, policy) as gw:
        answer = await post(gw.url + "/events", json.dumps(events).encode(), auth)
        consumer = reader(gw.bootstrap, [gw.names.cart_events])
        await consumer.start()
        try:
            messages = []
            deadline = time.monotonic() + 30
            while not messages and time.monotonic() < deadline:
                for found in (await consumer.getmany(timeout_ms=200)).values():
                    messages.extend(found)
        finally:
            await consumer.stop()
    assert answer == (200, {"accepted": 6})
    # One request, one checkout, one partition: its records leave in one produce round.
    (message,) = messages
    assert message.key is None
    records = records_of(json.loads(message.value))
    assert [r["event_id"] for r in records] == [f"p{n}" for n in range(6)]
    assert [r["total"] for r in records] == [f"{60 + n}.00" for n in range(6)]
