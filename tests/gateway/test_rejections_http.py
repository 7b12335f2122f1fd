"""Every way a request is refused: status, counted reason, dead-letter record, no 500."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import aiohttp
import pytest

from cartbands.broker import EmbeddedBroker
from tests.gateway.helpers import (
    SHOPIFY_SECRET,
    Records,
    fixture_bytes,
    having,
    post,
    running_gateway,
    shopify_headers,
    sign,
    write_policy,
)

pytestmark = pytest.mark.broker
MIB = 1024 * 1024


@pytest.fixture
def policy(tmp_path):
    return write_policy(tmp_path / "policy.yaml")


def _port(url: str) -> int:
    return int(urlsplit(url).port or 0)


async def _status_line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), timeout=60)  # after the DLQ write


async def test_declared_oversize_is_413_before_the_body_is_sent(broker, policy):
    async with running_gateway(broker.bootstrap, policy) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(gw.url))
        head = (
            "POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {50 * MIB}\r\n"
            "X-Shopify-Shop-Domain: acme-coffee.myshopify.com\r\n\r\n"
        )
        # Only 64 KiB of the declared 50 MiB is ever sent: the answer must not wait for more.
        writer.write(head.encode() + b'{"token": "' + b"x" * 65536)
        await writer.drain()
        line = await _status_line(reader)
        writer.close()
        assert line.startswith(b"HTTP/1.1 413"), line
        records = await gw.until(gw.names.ingest_dlq, having("reason", ["too_large"]))
    dead = records[0].value
    assert dead["reason"] == "too_large" and dead["status"] == 413
    assert dead["truncated"] is True
    assert len(dead["body"]) <= 65536 + len('{"token": "')


async def test_streamed_oversize_is_cut_at_the_limit(broker, policy):
    async with running_gateway(broker.bootstrap, policy, max_body=256 * 1024) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(gw.url))
        writer.write(
            b"POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"X-Shopify-Shop-Domain: acme-coffee.myshopify.com\r\n\r\n"
        )
        chunk = b"y" * 32768
        for _ in range(10):  # 320 KiB sent, never terminated: the cap must answer by itself
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        line = await _status_line(reader)
        writer.close()
        assert line.startswith(b"HTTP/1.1 413"), line
        records = await gw.until(gw.names.ingest_dlq, having("reason", ["too_large"]))
    dead = records[0].value
    assert dead["reason"] == "too_large"
    assert dead["truncated"] is True
    assert len(dead["body"]) == 256 * 1024


async def test_each_rejection_has_its_status_reason_and_dead_letter(broker, policy):
    good = fixture_bytes("shopify_checkout.json")
    no_token = json.dumps({**json.loads(good), "token": None}).encode()
    bad_json = b'{"token": "abc", '
    binary = b"\xff\xfe\x00junk"
    url = "/webhooks/shopify"
    # (body, headers, status, answered reason, dead-letter reason: None when not refused)
    cases = [
        (good, {**shopify_headers(good, "checkouts/update", "r1"), "Content-Type": "text/plain"},
         415, "unsupported_media_type", "unsupported_media_type"),
        # An unknown shop answers exactly as a forged signature: no map of the configured shops.
        (good, shopify_headers(good, "checkouts/update", "r2", domain="nobody.myshopify.com"),
         401, "bad_signature", "unknown_store"),
        (bad_json, shopify_headers(bad_json, "checkouts/update", "r3"), 400, "malformed_json",
         "malformed_json"),
        (no_token, shopify_headers(no_token, "checkouts/update", "r4"), 400, "missing_field",
         "missing_field"),
        (good, {k: v for k, v in shopify_headers(good, "checkouts/update", "r5").items()
                if k != "X-Shopify-Hmac-Sha256"}, 401, "bad_signature", "bad_signature"),
        (good, {k: v for k, v in shopify_headers(good, "checkouts/update", "r6").items()
                if k != "X-Shopify-Webhook-Id"}, 400, "missing_field", "missing_field"),
        (binary, shopify_headers(binary, "checkouts/update", "r7"), 400, "malformed_json",
         "malformed_json"),
    ]  # fmt: skip
    async with running_gateway(broker.bootstrap, policy) as gw:
        answers = [await post(gw.url + url, body, headers) for body, headers, *_ in cases]
        expected = {
            (dead_reason, f"r{n}" if n != 6 else None)
            for n, (*_, dead_reason) in enumerate(cases, 1)
        }
        dead = await gw.until(gw.names.ingest_dlq, lambda records: expected <= _refusals(records))
        metrics = await _get(gw.url + "/metrics")
    for (_, _, status, reason, _), (got, answer) in zip(cases, answers, strict=True):
        assert got == status, answer
        assert answer["error"] == reason
    assert answers[1][1] == answers[4][1], "unknown shop and bad signature: the same answer"
    assert answers[3][1]["detail"] == "token: required field is missing"
    assert answers[5][1]["detail"].startswith("X-Shopify-Webhook-Id")
    assert _refusals(dead) == expected, "each refusal dead-lettered (repeats aside), no other"
    binary_dead = next(
        r.value for r in dead if r.value["headers"].get("X-Shopify-Webhook-Id") == "r7"
    )
    assert binary_dead["body_encoding"] == "base64"
    for record in dead:
        assert not any("hmac" in name.lower() for name in record.value["headers"])
    assert 'cartbands_gateway_rejections_total{reason="unknown_store",route="shopify"} 1.0' in (
        metrics
    )


def _refusals(records: Records) -> set[tuple[str, str | None]]:
    """(reason, webhook id) of each dead letter: distinct deliveries, whatever the repeats."""
    return {(r.value["reason"], r.value["headers"].get("X-Shopify-Webhook-Id")) for r in records}


async def test_rate_limit_is_per_store_and_answers_429(broker, policy):
    body = fixture_bytes("shopify_checkout.json")
    tiny = "tiny-shop.myshopify.com"
    async with running_gateway(broker.bootstrap, policy) as gw:
        statuses = []
        for n in range(4):
            headers = shopify_headers(body, "checkouts/update", f"t{n}", "tiny-secret", tiny)
            statuses.append((await post(gw.url + "/webhooks/shopify", body, headers))[0])
        other = await post(
            gw.url + "/webhooks/shopify", body, shopify_headers(body, "checkouts/update", "a1")
        )
        expected = {("rate_limited", "t2"), ("rate_limited", "t3")}
        dead = await gw.until(gw.names.ingest_dlq, lambda records: expected <= _refusals(records))
    assert statuses == [200, 200, 429, 429]
    assert other[0] == 200, "another store keeps its own budget"
    assert _refusals(dead) == expected


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


async def test_broker_stopped_gives_503_and_not_ready(policy, tmp_path):
    own = EmbeddedBroker()
    await asyncio.to_thread(own.start)
    try:
        body = fixture_bytes("shopify_checkout.json")
        # A generous ack timeout: the first delivery must succeed on a loaded machine too.
        async with running_gateway(own.bootstrap, policy, ack_timeout=10.0) as gw:
            status, _ = await post(
                gw.url + "/webhooks/shopify", body, shopify_headers(body, "checkouts/update", "b1")
            )
            assert status == 200
            assert (await _get(gw.url + "/readyz")).startswith("ready")
            await asyncio.to_thread(own.stop)
            status, answer = await post(
                gw.url + "/webhooks/shopify", body, shopify_headers(body, "checkouts/update", "b2")
            )
            assert status == 503, answer
            assert answer["error"] == "broker_unavailable"
            # A refusal that cannot be dead-lettered is not answered 401 but 503: retry later.
            forged = shopify_headers(body, "checkouts/update", "b3", secret="wrong")
            status, _ = await post(gw.url + "/webhooks/shopify", body, forged)
            assert status == 503
            await asyncio.sleep(1.1)  # readiness is cached for a second
            async with aiohttp.ClientSession() as session:
                async with session.get(gw.url + "/readyz") as response:
                    assert response.status == 503
                async with session.get(gw.url + "/healthz") as response:
                    assert response.status == 200
    finally:
        own.stop()


async def test_signature_is_checked_on_the_exact_bytes(broker, policy):
    body = fixture_bytes("shopify_checkout.json")
    reformatted = json.dumps(json.loads(body)).encode()
    headers = shopify_headers(body, "checkouts/update", "x1")
    assert headers["X-Shopify-Hmac-Sha256"] == sign(body, SHOPIFY_SECRET)
    async with running_gateway(broker.bootstrap, policy) as gw:
        status, _ = await post(gw.url + "/webhooks/shopify", reformatted, headers)
    assert status == 401
