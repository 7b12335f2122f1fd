"""What the gateway produces is what stage A expects: a repeated delivery is dropped there."""

from __future__ import annotations

from datetime import UTC, datetime

from cartbands.policyfile import load_policy
from gateway import shopify
from recovery.checkouts import apply_event, apply_tick
from schemas.codec import dumps, loads
from tests.gateway.helpers import fixture_json

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
    assert converted.record["order_id"] == "5550001234"
    assert converted.record["discount_codes"] == ["COMEBACK10"]
