"""What the gateway produces is what stage A expects: a repeated delivery is dropped there."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from cartbands.replay import send_ticks
from config.policyfile import DEFAULT_POLICY, load_policy
from gateway import shopify
from recovery.checkouts import apply_event, apply_tick, epoch
from recovery.simulate import simulate
from schemas.codec import dumps, loads
from streams.app import code_secret
from tests.gateway.helpers import (
    fixture_bytes,
    fixture_json,
    post,
    running_gateway,
    shopify_headers,
    write_policy,
)
from tests.pipeline.helpers import read_touches, without_holdout

NOW = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


def _wire(topic: str, fixture: str, webhook_id: str) -> dict:
    (emit,) = shopify.normalize(topic, fixture_json(fixture), "acme", webhook_id, NOW)
    return loads(dumps(emit.value))  # exactly as it travels on cart-events


def test_a_repeated_webhook_is_dropped_by_stage_a_and_plans_once():
    policy = load_policy().defaults
    event = _wire("checkouts/update", "shopify_checkout.json", "wh-1")
    state, effects = apply_event(None, event, 0, policy)
    assert state is not None and not [e for e in effects if e.kind == "duplicate"]
    again, repeated = apply_event(
        state, _wire("checkouts/update", "shopify_checkout.json", "wh-1"), 0, policy
    )
    assert [e.kind for e in repeated] == ["duplicate"]
    assert again == state
    # Past the abandonment window the checkout is abandoned once (one plan downstream).
    later = datetime(2026, 11, 2, 18, 0, tzinfo=UTC).timestamp()
    _, ticked = apply_tick(again, "acme:c1a2b3d4e5f60718293a4b5c6d7e8f90", later)
    assert [e.kind for e in ticked].count("abandoned") == 1


def test_the_order_converts_the_checkout_it_names():
    policy = load_policy().defaults
    state, _ = apply_event(
        None, _wire("checkouts/update", "shopify_checkout.json", "w1"), 0, policy
    )
    state, effects = apply_event(state, _wire("orders/paid", "shopify_order.json", "w2"), 0, policy)
    (converted,) = [e for e in effects if e.kind == "converted"]
    assert converted.record is not None
    assert converted.record.order_id == "5550001234"
    assert converted.record.discount_codes == ["COMEBACK10"]
    assert converted.record.discounts == [{"code": "COMEBACK10", "amount": "22.99"}]


@pytest.mark.broker
def test_a_webhook_delivered_again_hours_later_yields_one_plan(broker, workers, tmp_path):
    """Real HTTP into a running gateway, a real broker and a real worker. Shopify delivers a
    checkout webhook, the checkout is abandoned and its first touch goes out; then Shopify
    delivers the same webhook again (same ``X-Shopify-Webhook-Id``: it retries for hours).
    The touches that come out are exactly those the core plans for one delivery."""
    names = workers.names
    body = fixture_bytes("shopify_checkout.json")
    headers = shopify_headers(body, "checkouts/update", "wh-twice")
    gateway_policy = write_policy(tmp_path / "gateway-policy.yaml")

    async def deliver() -> int:
        async with running_gateway(
            broker.bootstrap, gateway_policy, names=names, partitions=workers.partitions
        ) as gw:
            status, _ = await post(gw.url + "/webhooks/shopify", body, headers)
        return status

    def distinct_touches(count: int) -> list[dict]:
        deadline = time.monotonic() + 120
        found: list[dict] = []
        while time.monotonic() < deadline:
            found = read_touches(broker.bootstrap, names.touch_topics, count=count, idle=3.0)
            if len(found) >= count:
                break
        return found

    policy = without_holdout(DEFAULT_POLICY, tmp_path / "policy.yaml")
    event = _wire("checkouts/update", "shopify_checkout.json", "wh-twice")
    at = epoch(event["occurred_at"], "occurred_at")
    expected = simulate([(at, event)], load_policy(policy), code_secret)
    wanted = {t["touch_id"] for t in expected.touches}
    assert len(wanted) >= 2, "the fixture checkout is planned several touches"
    first_due = min(epoch(t["due_at"], "due_at") for t in expected.touches)

    assert asyncio.run(deliver()) == 200
    workers.start(policy, "--clock", "event")
    asyncio.run(send_ticks(broker.bootstrap, names.cart_events, [first_due + 60]))
    early = distinct_touches(1)
    assert early, workers.logs()
    assert asyncio.run(deliver()) == 200  # the retry, after the first touch went out
    asyncio.run(send_ticks(broker.bootstrap, names.cart_events, [at + 8 * 86400]))
    distinct_touches(len(wanted))  # wait for them all, then read once more: nothing else came
    found = read_touches(broker.bootstrap, names.touch_topics, idle=4.0)
    assert {t["touch_id"] for t in found} == wanted, workers.logs()
    assert {t["plan_version"] for t in found} == {1}
