"""The cartbands-carts WordPress plugin against the gateway that takes its requests.

harness.php runs the plugin under ``php`` on stubbed WordPress (wordpress_stubs.php) through
shoppers' carts and writes every request the plugin made; each is sent, headers and raw body
as the plugin built them, to ``POST /webhooks/woocommerce`` of a running gateway (in-memory
output, tests.gateway.hostile), whose canonical record is checked field by field. The plugin
and the gateway's verification and parser cannot drift apart unnoticed.

Skipped when ``php`` is missing, unless CARTBANDS_PHP_TESTS=required (.ci/run sets it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from gateway.emit import Emit
from gateway.signatures import verify_body_hmac
from recovery.amounts import MINOR_UNITS
from schemas.codec import dumps, loads
from schemas.jsonschema import record_schema
from schemas.records import CartUpdated
from tests.gateway.helpers import WOO_SECRET, sign
from tests.gateway.hostile import Answer, Hostile, hostile_gateway

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
HARNESS = HERE / "harness.php"
GATEWAY_URL = "https://carts.example.com/webhooks/woocommerce"
SITE = "https://shop.acme.example/"
WC_HEADERS = {
    "Content-Type",
    "X-WC-Webhook-Source",
    "X-WC-Webhook-Topic",
    "X-WC-Webhook-Resource",
    "X-WC-Webhook-Event",
    "X-WC-Webhook-Signature",
    "X-WC-Webhook-ID",
    "X-WC-Webhook-Delivery-ID",
}
Run = dict[str, Any]


def _php() -> str:
    php = shutil.which("php")
    if php is not None:
        return php
    if os.environ.get("CARTBANDS_PHP_TESTS") == "required":
        pytest.fail(
            "CARTBANDS_PHP_TESTS=required, but php is not on PATH (apt-get install php-cli)"
        )
    pytest.skip("php is not installed (Debian: apt-get install php-cli): the plugin is not tested")


def _run_harness(php: str, out: Path, *flags: str) -> Run:
    done = subprocess.run(
        [
            php,
            "-d",
            "error_reporting=-1",
            "-d",
            "display_errors=stderr",
            str(HARNESS),
            str(out),
            WOO_SECRET,
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"PHP warnings or notices: {done.stderr}"
    result: Run = json.loads(out.read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The plugin without Action Scheduler: non-blocking posts at the end of each request."""
    return _run_harness(_php(), tmp_path_factory.mktemp("woo") / "direct.json")


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The plugin with Action Scheduler: posts in background actions, retried."""
    path = tmp_path_factory.mktemp("woo") / "scheduled.json"
    return _run_harness(_php(), path, "--action-scheduler")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    with hostile_gateway(tmp_path_factory.mktemp("woo-gateway")) as running:
        yield running


def _requests(run: Run, scenario: str) -> list[dict[str, Any]]:
    found = [r for r in run["requests"] if r["scenario"] == scenario]
    assert found, f"the plugin sent nothing for {scenario}"
    return found


def _body(request: dict[str, Any]) -> bytes:
    return base64.b64decode(request["body"])


def _post(gw: Hostile, headers: dict[str, str], body: bytes) -> tuple[Answer, list[Emit]]:
    before = len(gw.output.sent)
    raw = [(name.encode(), str(value).encode()) for name, value in headers.items()]
    answer = gw.send("/webhooks/woocommerce", raw, body)
    return answer, gw.output.sent[before:]


def _record(gw: Hostile, request: dict[str, Any]) -> dict[str, Any]:
    """The canonical record the gateway made of one of the plugin's requests."""
    assert request["url"] == GATEWAY_URL and request["method"] == "POST"
    answer, emits = _post(gw, request["headers"], _body(request))
    assert (answer.status, answer.json()) == (200, {"accepted": 1}), answer.body
    (emit,) = emits
    value = emit.value
    assert emit.stream == "cart_events" and emit.key == f"acme:{value['checkout']}"
    wire = loads(dumps(value))  # as it travels on cart-events
    jsonschema.Draft202012Validator(record_schema(CartUpdated)).validate(wire)
    record: dict[str, Any] = wire
    return record


def _money(record: dict[str, Any], name: str) -> tuple[Decimal, int]:
    """An amount as a decimal and in minor units of the record's currency."""
    amount = Decimal(record[name])
    minor = amount.scaleb(MINOR_UNITS[record["currency"]])
    assert minor == minor.to_integral_value(), f"{name} has more places than its currency"
    return amount, int(minor)


def test_every_request_is_signed_as_woocommerce_signs_and_accepted(
    direct: Run, scheduled: Run, gateway: Hostile
) -> None:
    sent = direct["requests"] + scheduled["requests"]
    assert len(sent) >= 12
    assert all(r["blocking"] is False for r in direct["requests"]), "no waiting in-request"
    for request in sent:
        headers, body = request["headers"], _body(request)
        assert set(headers) == WC_HEADERS
        assert headers["Content-Type"] == "application/json"
        assert headers["X-WC-Webhook-Source"] == SITE
        assert headers["X-WC-Webhook-Topic"] == "action.cartbands_cart"
        assert (headers["X-WC-Webhook-Resource"], headers["X-WC-Webhook-Event"]) == (
            "action",
            "cartbands_cart",
        )
        assert verify_body_hmac(body, headers["X-WC-Webhook-Signature"], (WOO_SECRET.encode(),))
        assert body == body.strip(), "WooCommerce trims the JSON it signs"
        record = _record(gateway, request)
        assert record["platform"] == "woocommerce" and record["store"] == "acme"
        assert re.fullmatch(r"wc-[0-9a-f]{32}", record["checkout"])
        assert record["event_id"].startswith(record["checkout"] + ":")
    tampered = dict(direct["requests"][0])
    forged_body = _body(tampered).replace(b'"quantity":2', b'"quantity":9')
    assert forged_body != _body(tampered)
    answer, emits = _post(gateway, tampered["headers"], forged_body)
    assert answer.status == 401
    assert [e.stream for e in emits] == ["ingest_dlq"], "refused, dead-lettered, not produced"
    assert len({r["headers"]["X-WC-Webhook-Delivery-ID"] for r in direct["requests"]}) == len(
        direct["requests"]
    )


def test_guest_cart_then_the_email_typed_at_checkout(direct: Run, gateway: Hostile) -> None:
    first, second = (_record(gateway, r) for r in _requests(direct, "guest_email"))
    assert "contact" not in first, "nothing typed yet: no contact"
    assert first["checkout"] == second["checkout"] and first["event_id"] != second["event_id"]
    assert second["occurred_at"] > first["occurred_at"]
    assert second["contact"] == {
        "email": "bo@example.com",
        "email_consent": True,
        "sms_consent": False,
        "locale": "fr-FR",
    }
    assert second["currency"] == "USD"
    assert _money(second, "total") == (Decimal("54.00"), 5400)
    assert _money(second, "subtotal") == (Decimal("49.00"), 4900)
    assert _money(second, "shipping") == (Decimal("5.00"), 500)
    assert second["line_items"] == [
        {
            "title": "Espresso beans",
            "quantity": 2,
            "price": "18.50",
            "product_id": "101",
            "sku": "BEAN-1",
        },
        {
            "title": "Mug - Blue",
            "quantity": 1,
            "price": "12.00",
            "product_id": "102",
            "variant_id": "1021",
            "sku": "MUG-B",
        },
    ]
    link = urlsplit(second["recovery_url"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == SITE
    query = parse_qs(link.query)
    assert query["cartbands_restore"] == [second["checkout"]]
    assert re.fullmatch(r"[0-9a-f]{32}", query["cartbands_token"][0])
    facts = direct["facts"]
    assert facts["guest_capture"] == "json" and facts["guest_bad_nonce"] == "bad nonce"
    assert facts["guest_requests"] == 2, "the same email again, or a forged capture, sends nothing"


def test_logged_in_customer_with_history_addresses_and_prices_with_tax(
    direct: Run, gateway: Hostile
) -> None:
    (request,) = _requests(direct, "logged_in")
    record = _record(gateway, request)
    assert record["currency"] == "EUR"
    assert record["contact"] == {
        "email": "ana@example.com",
        "phone": "+33 6 12 34 56 78",
        "customer_id": "42",
        "first_name": "Ana",
        "email_consent": False,
        "sms_consent": False,
        "locale": "fr-FR",
    }
    assert record["customer"] == {"orders_count": 3, "total_spent": "412.50"}
    assert record["billing_address"] == {"country_code": "FR", "zip": "75011"}
    assert record["shipping_address"] == {
        "country_code": "DE",
        "province_code": "BE",
        "zip": "10115",
    }
    # 3 x 10.00 + 20% tax, shipping 4.90 + 20% tax: as the shop shows them, with tax
    assert record["line_items"][0]["price"] == "12.00"
    assert _money(record, "subtotal") == (Decimal("36.00"), 3600)
    assert _money(record, "shipping") == (Decimal("5.88"), 588)
    assert _money(record, "total") == (Decimal("41.88"), 4188)


def test_phone_only_shopper_with_sms_consent(direct: Run, gateway: Hostile) -> None:
    (request,) = _requests(direct, "phone_only")
    record = _record(gateway, request)
    assert record["contact"] == {
        "phone": "+447700900123",
        "email_consent": False,
        "sms_consent": True,
        "locale": "fr-FR",
    }
    assert record["currency"] == "GBP" and _money(record, "total") == (Decimal("22.00"), 2200)


def test_block_checkout_contact_from_the_store_api(direct: Run, gateway: Hostile) -> None:
    before, after, emptied = (_record(gateway, r) for r in _requests(direct, "block_checkout"))
    assert "contact" not in before and before["checkout"] == after["checkout"]
    assert direct["facts"]["draft_meta"] == {"_cartbands_checkout": after["checkout"]}
    assert emptied["checkout"] == after["checkout"] and emptied["line_items"] == []
    assert (after["contact"]["email"], after["contact"]["phone"]) == (
        "gil@example.com",
        "5550100199",
    )


def test_a_store_sets_consent_with_the_contact_filter(direct: Run, gateway: Hostile) -> None:
    (request,) = _requests(direct, "filtered_consent")
    contact = _record(gateway, request)["contact"]
    assert (contact["email"], contact["email_consent"]) == ("hal@example.com", True)


def test_emptied_cart_is_sent_empty(direct: Run, gateway: Hostile) -> None:
    full, empty = (_record(gateway, r) for r in _requests(direct, "emptied"))
    assert full["checkout"] == empty["checkout"] and full["line_items"]
    assert empty["line_items"] == [] and "recovery_url" not in empty
    for name in ("total", "subtotal", "shipping"):
        assert _money(empty, name) == (Decimal("0.00"), 0)
    assert empty["contact"]["email"] == "di@example.com"


def test_non_ascii_titles_arrive_as_typed(direct: Run, gateway: Hostile) -> None:
    (request,) = _requests(direct, "non_ascii")
    record = _record(gateway, request)
    titles = [item["title"] for item in record["line_items"]]
    assert titles == ["Café crème \u2013 250 g", "日本茶 Sencha & more"]
    assert record["contact"]["first_name"] == "Élodie"
    assert _money(record, "total") == (Decimal("33.90"), 3390)


def test_yen_has_no_decimals(direct: Run, gateway: Hostile) -> None:
    (request,) = _requests(direct, "jpy")
    body = json.loads(_body(request))
    shown = (body["total"], body["line_items"][0]["price"], body["shipping"])
    assert shown == ("3600", "1200", "0")
    record = _record(gateway, request)
    assert record["currency"] == "JPY"
    assert _money(record, "total") == (Decimal("3600"), 3600)


def test_the_order_converts_the_plugins_checkout(direct: Run, gateway: Hostile) -> None:
    cart_request = _requests(direct, "ordered")[0]
    checkout = _record(gateway, cart_request)["checkout"]
    facts = direct["facts"]
    assert facts["order_meta"] == {"_cartbands_checkout": checkout}
    assert facts["ordered_requests"] == 1, "the cart emptied by the order is not sent"
    assert facts["ordered_checkout"] is None
    assert facts["next_cart_checkout"] not in (None, checkout), "a new cart, a new checkout"
    # WooCommerce's order.updated webhook (REST v3 order) carrying the meta the plugin wrote
    order = json.dumps(
        {
            "id": 881,
            "status": "processing",
            "currency": "USD",
            "total": "23.50",
            "cart_hash": "not-the-checkout",
            "date_paid_gmt": "2026-11-02T15:21:00",
            "billing": {"email": "ed@example.com"},
            "meta_data": [{"id": 9, "key": k, "value": v} for k, v in facts["order_meta"].items()],
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": SITE,
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": "d-881",
        "X-WC-Webhook-Signature": sign(order, WOO_SECRET),
    }
    answer, emits = _post(gateway, headers, order)
    assert answer.status == 200
    (emit,) = emits
    assert emit.value["type"] == "cart_completed" and emit.value["checkout"] == checkout
    assert emit.key == f"acme:{checkout}"


def test_recovery_link_restores_the_same_checkout(direct: Run, gateway: Hostile) -> None:
    facts = direct["facts"]
    assert facts["restore"] == SITE + "checkout/" and facts["restore_cookie"] is True
    guest = _record(gateway, _requests(direct, "guest_email")[-1])
    (request,) = _requests(direct, "restored")
    restored = _record(gateway, request)
    assert restored["checkout"] == guest["checkout"]
    assert restored["line_items"] == guest["line_items"]
    assert restored["contact"]["email"] == "bo@example.com"
    assert restored["contact"]["email_consent"] is True
    assert restored["event_id"] != guest["event_id"]
    assert facts["forged"] == facts["malformed"] == SITE + "cart/"
    assert facts["forged_cart_empty"] is True
    assert [n for n in direct["notices"] if n[0] == "notice"] == [
        ["notice", "This cart link has expired. Your cart is as you left it here."]
    ] * 2
    assert facts["restore_ttl"] == 14 * 86400


def test_settings_page_and_form(direct: Run) -> None:
    facts = direct["facts"]
    assert facts["page_has_secret"] is False and facts["page_has_nonce"] is True
    assert facts["page_escapes"] is True
    assert facts["forged_form"] == "bad nonce"
    assert facts["after_forged"] == GATEWAY_URL, "a forged form changes nothing"
    assert facts["cleaned"] == {
        "gateway_url": "",
        "secret_kept": True,
        "store": "xacme",
        "restore_days": 90,
    }


def test_action_scheduler_delivers_in_the_background_and_retries_the_same_body(
    scheduled: Run, gateway: Hostile
) -> None:
    facts = scheduled["facts"]
    assert facts["posts_in_request"] == 0, "with Action Scheduler nothing is posted in-request"
    queued = [s for s in scheduled["scheduled"] if s["scenario"] == "scheduled"]
    assert [(s["attempt"], s["delay"]) for s in queued] == [(1, None), (2, 60), (3, 120)]
    assert len({s["body"] for s in queued}) == 1, "a retry sends the same body (same event id)"
    assert all(s["hook"] == "cartbands_carts_deliver" for s in scheduled["scheduled"])
    posts = _requests(scheduled, "scheduled")
    assert [p["blocking"] for p in posts] == [True] * 4
    assert {p["body"] for p in posts} == {queued[0]["body"]}
    assert facts["queued_after_success"] == 2 and facts["queued_after_refusal"] == 2
    (log,) = scheduled["logs"]
    assert log[1] == "cart snapshot not delivered: HTTP status 400 after 1 attempt(s)"
    assert _record(gateway, posts[0])["contact"]["email"] == "fay@example.com"


def test_the_plugins_currency_decimals_are_the_gateways(direct: Run) -> None:
    assert direct["facts"]["minor_units"] == {c: n for c, n in MINOR_UNITS.items() if n != 2}


def test_without_php_it_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CARTBANDS_PHP_TESTS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install php-cli"):
        _php()
    monkeypatch.setenv("CARTBANDS_PHP_TESTS", "required")
    with pytest.raises(pytest.fail.Exception, match="CARTBANDS_PHP_TESTS=required"):
        _php()


def test_the_readme_table_names_every_field_the_plugin_sends(direct: Run) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### WooCommerce carts: the cartbands-carts plugin", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    documented = {
        name.removesuffix("[]")
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([^`]+)`", row.split("|")[1])
    }
    sent = {name for r in direct["requests"] for name in json.loads(_body(r))}
    assert documented == sent
    assert documented <= set(record_schema(CartUpdated)["properties"])
