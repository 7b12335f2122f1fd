"""Faults through the stream (``--clock event``): a redaction racing the tick that abandons the
shopper's checkout, records the core cannot take reaching the topics directly, and a record
stage A sends again after its plan ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bus.kafka import drain, produce, producer
from cartbands.replay import send_ticks
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery import checkouts as stage_a
from recovery.ids import checkout_key, shopper_key
from schemas.codec import dumps
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
    # a tick that cannot be a clock, in a batch with a good event; a key that is not UTF-8
    batch = {"batch": [{"type": "tick", "now": "soon"}, cart("p-batch", "120", customer="dy")]}
    asyncio.run(send_raw(broker.bootstrap, names.cart_events, b"pipe:p-batch", dumps(batch)))
    consent = {"type": "consent_changed", "store": "pipe", "channel": "sms", "granted": False}
    asyncio.run(send_raw(broker.bootstrap, names.shopper_events, b"\xff\xfe", dumps(consent)))
    workers.start(policy, "--clock", "event")
    tick(broker, names, T0 + 2 * HOUR, T0 + 8 * DAY)
    found = read_touches(broker.bootstrap, list(names.touch_topics), idle=5.0)
    assert {t["cart"] for t in found} == {"p-good", "p-batch"}, workers.logs()
    dead = asyncio.run(drain(broker.bootstrap, [names.cart_events_dlq], idle=3.0, timeout=20))
    reasons = sorted(value["reason"].split(":")[0] for _topic, _key, value in dead)
    assert reasons == ["cart.total", "now", "shopper", "total", "total", "total"], reasons


async def send_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    async with producer(bootstrap) as out:
        await out.send_and_wait(topic, value=value, key=key)


def test_an_abandonment_sent_again_after_its_plan_ended_emits_nothing(broker, workers, policy):
    """Stage A sends its records again after a crash: stage B must not start the ended plan
    again (its touches would go out again under the same ids, which only the senders' dedup
    would hide)."""
    names = workers.names
    event = cart("rp-1", "310", customer="eve")
    send(broker, names, event)
    workers.start(policy, "--clock", "event")
    tick(broker, names, T0 + 2 * HOUR, T0 + 8 * DAY)
    first = read_touches(broker.bootstrap, list(names.touch_topics), idle=5.0)
    assert len(first) >= 3, workers.logs()
    before = raw_touches(broker, names)
    rules = load_policy(policy).for_store("pipe")
    state, _ = stage_a.apply_event(None, event, 0, rules)
    assert state is not None
    _, (again,) = stage_a.apply_tick(state, checkout_key("pipe", "rp-1"), T0 + 2 * HOUR)
    assert again.key is not None and again.record is not None
    asyncio.run(produce(broker.bootstrap, names.shopper_events, [(again.key, again.record)]))
    tick(broker, names, T0 + 9 * DAY)
    assert raw_touches(broker, names, idle=5.0) == before, workers.logs()


def raw_touches(broker, names, idle: float = 3.0) -> list[str]:
    """Every touch command on the touch topics, repeats included, by touch id."""
    records = asyncio.run(drain(broker.bootstrap, list(names.touch_topics), idle=idle, timeout=30))
    return sorted(value["touch_id"] for _topic, _key, value in records)
