"""``cartbands gateway`` as a process: configuration errors, readiness, a delivery end to end."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from cartbands.broker import free_port
from cartbands.processes import running, tail
from tests.gateway.helpers import (
    ENV,
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
        records = await read_until(
            broker.bootstrap, [prefix + "cart-events"], having("event_id", ["cli-1"]), 60
        )
    assert {r.value["event_id"] for r in records} == {"cli-1"}
    text = tail(log, 100_000).lower()
    assert "lovelace" not in text and "5550100" not in text, "no personal data in the logs"


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
