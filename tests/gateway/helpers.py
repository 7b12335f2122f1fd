"""Shared test helpers for the gateway: policies, signing, a running gateway on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

from agents.messages import records_of
from bus.kafka import drain, reader
from bus.topics import TopicNames
from config.policyfile import load_policy
from gateway.app import Gateway
from gateway.bigcommerce_api import BigCommerceApi
from gateway.cli import bound_port, serve
from gateway.config import build_config
from gateway.output import Output
from recovery.ids import checkout_key

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHOP_DOMAIN = "acme-coffee.myshopify.com"
SHOPIFY_SECRET = "shpss_new_secret_0123456789"
SHOPIFY_OLD_SECRET = "shpss_old_secret_9876543210"
WOO_SECRET = "woo-secret-abc"
GENERIC_TOKEN = "tok_acme_generic_123"
GENERIC_HMAC = "hmac-acme-generic-456"
TWILIO_TOKEN = "twilio-auth-token-0123"
BC_TOKEN = "bc-access-token"
BC_SECRET = "bc-hook-secret"
STORE_NUMBER = "+15005550006"

ENV = {
    "SHOPIFY_SECRET_ACME": SHOPIFY_SECRET,
    "SHOPIFY_SECRET_ACME_OLD": SHOPIFY_OLD_SECRET,
    "WOO_SECRET_ACME": WOO_SECRET,
    "EVENTS_TOKEN_ACME": GENERIC_TOKEN,
    "EVENTS_HMAC_ACME": GENERIC_HMAC,
    "TWILIO_TOKEN_ACME": TWILIO_TOKEN,
    "BC_TOKEN_ACME": BC_TOKEN,
    "BC_SECRET_ACME": BC_SECRET,
    "SHOPIFY_SECRET_TINY": "tiny-secret",
}

_prefixes = itertools.count(1)


def policy_text(
    bigcommerce_api: str = "http://127.0.0.1:9", api_rate: str = "{per_second: 100, burst: 100}"
) -> str:
    return f"""
defaults:
  currency: USD
  bands:
    - {{name: low, min: 0}}
    - {{name: high, min: 200}}
stores:
  acme:
    ingest:
      rate_limit: {{per_second: 1000, burst: 1000}}
      shopify:
        domains: [{SHOP_DOMAIN}]
        secret_env: [SHOPIFY_SECRET_ACME, SHOPIFY_SECRET_ACME_OLD]
      woocommerce:
        sites: [https://shop.acme.example/]
        secret_env: WOO_SECRET_ACME
      generic:
        token_env: EVENTS_TOKEN_ACME
        hmac_env: EVENTS_HMAC_ACME
      twilio:
        numbers: ["{STORE_NUMBER}"]
        auth_token_env: TWILIO_TOKEN_ACME
      bigcommerce:
        store_hash: abc123
        access_token_env: BC_TOKEN_ACME
        secret_env: BC_SECRET_ACME
        api_url: {bigcommerce_api}
        api_rate_limit: {api_rate}
  tiny:
    ingest:
      shopify:
        domains: [tiny-shop.myshopify.com]
        secret_env: SHOPIFY_SECRET_TINY
      rate_limit: {{per_second: 0.001, burst: 2}}
"""


def write_policy(
    path: Path,
    bigcommerce_api: str = "http://127.0.0.1:9",
    api_rate: str = "{per_second: 100, burst: 100}",
) -> Path:
    path.write_text(policy_text(bigcommerce_api, api_rate), encoding="utf-8")
    return path


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def shopify_headers(
    body: bytes,
    topic: str,
    webhook_id: str,
    secret: str = SHOPIFY_SECRET,
    domain: str = SHOP_DOMAIN,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Triggered-At": "2026-11-02T15:01:31Z",
    }


class Record(NamedTuple):
    topic: str
    partition: int
    key: bytes | None
    value: Any


Records = list[Record]


def unpacked(topic: str, partition: int, key: bytes | None, value: Any) -> Records:
    """A message as the records it carries: the gateway packs a produce round's cart events of
    one partition into one ``{"batch": [...]}`` message; each would have had its checkout key."""
    if key is not None or not isinstance(value, dict) or list(value) != ["batch"]:
        return [Record(topic, partition, key, value)]
    return [
        Record(topic, partition, checkout_key(r["store"], r["checkout"]).encode(), r)
        for r in records_of(value)
    ]


async def read_until(
    bootstrap: str,
    topics: Iterable[str],
    done: Callable[[Records], bool],
    timeout: float = 60.0,
) -> Records:
    """Every record of ``topics`` from the start, read until ``done(records)``
    holds or ``timeout`` passes (then the caller's assertions say what is missing).

    Unlike a wait for N records, this tolerates the repeats at-least-once allows: wait for
    what must be there (e.g. these event ids, an answer for each of these touches), not for a
    count that a repeated record would reach early.
    """
    consumer = reader(bootstrap, topics)
    await consumer.start()
    seen: Records = []
    deadline = time.monotonic() + timeout
    try:
        while not done(seen) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for partition, messages in batch.items():
                for message in messages:
                    value = json.loads(message.value) if message.value is not None else None
                    seen.extend(unpacked(partition.topic, partition.partition, message.key, value))
    finally:
        await consumer.stop()
    return seen


def having(field: str, wanted: Iterable[Any]) -> Callable[[Records], bool]:
    """``done`` for :func:`read_until`: every wanted value of ``field`` has been seen."""
    expected = set(wanted)

    def check(records: Records) -> bool:
        return expected <= {r.value.get(field) for r in records if isinstance(r.value, dict)}

    return check


@dataclass
class Running:
    url: str
    names: TopicNames
    gateway: Gateway
    bootstrap: str

    async def until(
        self, topic: str, done: Callable[[Records], bool], timeout: float = 30.0
    ) -> Records:
        return await read_until(self.bootstrap, [topic], done, timeout)

    async def records(
        self, topic: str, until: int | None = None, timeout: float = 15.0, idle: float = 0.6
    ) -> list[tuple[str, bytes | None, Any]]:
        return await drain(self.bootstrap, [topic], until=until, timeout=timeout, idle=idle)


@asynccontextmanager
async def running_gateway(
    bootstrap: str,
    policy: Path,
    *,
    ack_timeout: float = 20.0,  # generous: a 503 must mean a stopped broker, not a busy one
    max_body: int = 1024 * 1024,
    partitions: int = 2,
    wait_for_broker: bool = True,
    names: TopicNames | None = None,
) -> AsyncIterator[Running]:
    names = names or TopicNames(f"gw{next(_prefixes)}-{id(policy) % 100000}-")
    config = build_config(load_policy(policy), ENV)
    output = Output(bootstrap, names, partitions=partitions, ack_timeout=ack_timeout)
    api = BigCommerceApi(attempts=3, backoff=0.05, timeout=10.0)
    gateway = Gateway(config, output, max_body=max_body, bigcommerce_api=api)
    if wait_for_broker:
        await output.start(wait=True)
    runner = await serve(gateway, "127.0.0.1", 0)
    try:
        yield Running(f"http://127.0.0.1:{bound_port(runner)}", names, gateway, bootstrap)
    finally:
        await runner.cleanup()


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text
