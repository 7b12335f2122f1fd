"""Faults through the stream (``--clock event``): a redaction racing the tick that abandons the
shopper's checkout, and records the core cannot take reaching the topics directly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cartbands.kafka import drain, produce
from cartbands.policyfile import DEFAULT_POLICY
from cartbands.replay import send_ticks
from recovery.ids import checkout_key, shopper_key
from tests.pipeline.helpers import T0, cart, iso, read_touches, without_holdout

HOUR = 3600.0
DAY = 86400.0


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return without_holdout(DEFAULT_POLICY, tmp_path / "policy.yaml")


def send(broker, names, *events) -> None:
    records = [(checkout_key(e["store"], e["checkout"]), e) for e in events]
    asyncio.run(produce(broker.bootstrap, names.cart_events, records))


def tick(broker, names, *times) -> None:
    asyncio.run(send_ticks(broker.bootstrap, names.cart_events, times))


def test_a_redaction_whose_erasure_comes_after_the_abandoning_tick_wins(broker, workers, policy):
    """Stage B takes the redaction first (it is first on its partition); stage A abandons the
    checkout at a tick it reads before the erasure stage B sends it, so the abandonment is
    stamped after the redaction although the cart was given before it."""
    names = workers.names
    ann = shopper_key("pipe", "ann")
    assert ann is not None
    send(broker, names, cart("rl-ann", "310", customer="ann"), cart("rl-bob", "310"))
    redact = {"type": "shopper_redacted", "store": "pipe", "occurred_at": iso(T0 + HOUR / 2)}
    asyncio.run(produce(broker.bootstrap, names.shopper_events, [(ann, redact)]))
    tick(broker, names, T0 + 2 * HOUR)
    workers.start(policy, "--clock", "event")
    tick(broker, names, T0 + 8 * DAY)
    found = read_touches(broker.bootstrap, list(names.touch_topics), idle=5.0)
    assert [t for t in found if t["cart"] == "rl-bob"], workers.logs()
    assert [t for t in found if t["cart"] == "rl-ann"] == []
    assert "ann@example.com" not in str(found)


def test_poison_amounts_are_dead_lettered_and_the_shopper_goes_on(broker, workers, policy):
    """Records the core cannot take, on cart-events (another producer than the gateway) and on
    shopper-events (a replay): each dead-lettered with its reason; the shopper's next cart
    gets its sequence."""
    names = workers.names
    cy = shopper_key("pipe", "cy")
    assert cy is not None
    poison = [
        cart(f"p-{n}", total, customer="cy")
        for n, total in enumerate(["1e400", "9" * 30, "1" * 5000])
    ]
    send(broker, names, *poison)
    direct = {
        "type": "cart_abandoned",
        "store": "pipe",
        "shopper": cy,
        "checkout": "p-direct",
        "cycle": 1,
        "abandoned_at": iso(T0 + HOUR),
        "cart": {**cart("p-direct", "1e400", customer="cy"), "type": None},
        "sk": [T0 + HOUR, 0],
    }
    asyncio.run(produce(broker.bootstrap, names.shopper_events, [(cy, direct)]))
    send(broker, names, cart("p-good", "310.00", T0 + 60, customer="cy"))
    workers.start(policy, "--clock", "event")
    tick(broker, names, T0 + 2 * HOUR, T0 + 8 * DAY)
    found = read_touches(broker.bootstrap, list(names.touch_topics), idle=5.0)
    assert {t["cart"] for t in found} == {"p-good"}, workers.logs()
    assert len(found) >= 3
    dead = asyncio.run(drain(broker.bootstrap, [names.cart_events_dlq], idle=3.0, timeout=20))
    reasons = [value["reason"] for _topic, _key, value in dead]
    assert len(reasons) == 4, reasons
    assert all(reason.startswith(("total:", "cart.total:")) for reason in reasons), reasons
