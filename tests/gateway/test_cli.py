"""``cartbands gateway`` as a process: configuration errors, readiness, a delivery end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlencode

import pytest

from bus.topics import TopicNames
from cartbands.broker import free_port
from cartbands.processes import running, tail
from gateway.cli import gateway_command
from gateway.output import Output
from gateway.signatures import twilio_signature
from tests.gateway.helpers import (
    ENV,
    STORE_NUMBER,
    TWILIO_TOKEN,
    fixture_bytes,
    having,
    read_until,
    shopify_headers,
    write_policy,
)

pytestmark = pytest.mark.broker


def _wait_ready(url: str, log, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gateway not ready: {tail(log)}")


async def test_gateway_command_serves_a_shopify_delivery(broker, tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    port = free_port()
    log = tmp_path / "gateway.log"
    prefix = f"cli-gw-{uuid.uuid4().hex[:8]}-"
    args = ["gateway", "--broker", broker.url, "--port", str(port), "--policy", str(policy),
            "--topic-prefix", prefix, "--partitions", "2"]  # fmt: skip
    with running(args, log, env=ENV):
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, log)
        body = fixture_bytes("shopify_checkout.json")
        request = urllib.request.Request(
            url + "/webhooks/shopify",
            data=body,
            headers=shopify_headers(body, "checkouts/create", "cli-1"),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
        # Refusals and an SMS STOP are logged too: by reason and hashed shopper key only.
        bad_total = json.dumps({**json.loads(body), "total_price": "lots"}).encode()
        stop_form = {"MessageSid": "SMcli", "From": "+12125550100", "To": STORE_NUMBER,
                     "Body": "STOP"}  # fmt: skip
        twilio_url = url + "/webhooks/twilio/inbound"
        refused = [
            _post(url + "/webhooks/shopify", body,
                  shopify_headers(body, "checkouts/create", "cli-2", secret="forged")),
            _post(url + "/webhooks/shopify", bad_total,
                  shopify_headers(bad_total, "checkouts/create", "cli-3")),
            _post(twilio_url, urlencode(stop_form).encode(),
                  {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": twilio_signature(
                       twilio_url, stop_form.items(), TWILIO_TOKEN.encode())}),
        ]  # fmt: skip
        assert refused == [401, 400, 200]
        records = await read_until(
            broker.bootstrap, [prefix + "cart-events"], having("event_id", ["cli-1"]), 60
        )
    assert {r.value["event_id"] for r in records} == {"cli-1"}
    text = tail(log, 100_000).lower()
    assert "refused 401 (bad_signature)" in text and "refused 400 (invalid_amount)" in text
    assert "twilio: stop from shopper acme:" in text
    for personal in ("lovelace", "5550100", "555-0100", "11201", "analytical"):
        assert personal not in text, f"personal data in the logs: {personal}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_gateway_command_refuses_a_store_without_its_secret(tmp_path):
    policy = write_policy(tmp_path / "policy.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "cartbands", "gateway", "--policy", str(policy), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CARTBANDS_BROKER": "kafka://127.0.0.1:9"},
    )
    assert done.returncode != 0
    assert "stores.acme.ingest.shopify.secret_env: none of SHOPIFY_SECRET_ACME" in done.stderr


SHOPIFY_DEADLINE = 5.0  # seconds Shopify waits for a webhook's answer


def test_the_default_ack_wait_ends_before_shopifys_deadline():
    """It was 10 s: Shopify had given up (and would retry) while the gateway still waited,
    so its 503 reached no one. Now a slow broker's 503 arrives in time, with a second left."""
    option = next(p for p in gateway_command.params if p.name == "ack_timeout")
    assert option.default == Output("unused:9092", TopicNames("t-")).ack_timeout
    assert option.default <= SHOPIFY_DEADLINE - 1
