"""Social proof through the real sender: orders on shopper-events become the true count in the
next hesitant shopper's message, per store, only from the threshold on, and after a restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from sender_helpers import DUE, having, read_until, touch_data

from bus.kafka import ensure_topics, produce
from bus.topics import TopicNames
from config.policyfile import DEFAULT_POLICY
from recovery.policyset import PolicySet, parse_policy
from recovery.social_proof import day_of
from senders.service import longest_window

pytestmark = pytest.mark.broker

SHIRT = {"title": "Linen Shirt", "quantity": 1, "price": "40.00", "product_id": "shirt-1"}
MUG = {"title": "Mug", "quantity": 1, "price": "12.00", "product_id": "mug-1"}
CLAIM = "Popular right now: Linen Shirt was in {n} orders at this store in the last {d} days."


def policies() -> PolicySet:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["stores"] = {"small": {"social_proof": {"window": "2d", "min_orders": 2}}}
    return parse_policy(data)


def order(store: str, n: int, at: str, *items: dict[str, Any]) -> dict[str, Any]:
    """Stage A's cart_converted record of an order (what the senders read)."""
    return {"type": "cart_converted", "store": store, "shopper": f"{store}:s{n}",
            "checkout": f"chk-{store}-{n}", "order_id": f"o-{n}", "occurred_at": at,
            "currency": "USD", "total": "40.00", "discount_codes": [], "cycle": 0,
            "items": [{k: v for k, v in item.items() if k in ("product_id", "title")}
                      for item in items]}  # fmt: skip


def hesitant(touch_id: str, store: str, *items: dict[str, Any]) -> dict[str, Any]:
    summary = {"total": "52.00", "currency": "USD", "items": list(items)}
    return touch_data(
        touch_id=touch_id,
        store=store,
        shopper=f"{store}:h",
        segment="hesitant",
        template="social_proof",
        cart=f"chk-{touch_id}",
        cart_summary=summary,
    )


def sent(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "outbox" / "email.ndjson").read_bytes().splitlines()
    return {line["touch_id"]: line["message"]["text"] for line in (orjson.loads(x) for x in lines)}


async def deliver(broker, names: TopicNames, touches: list[dict[str, Any]]) -> None:
    await produce(broker.bootstrap, names.touches("email"), [(t["shopper"], t) for t in touches])
    wanted = having("touch_id", [t["touch_id"] for t in touches])
    results = await read_until(broker.bootstrap, [names.touch_results], wanted, timeout=60)
    outcomes = {r.value["touch_id"]: r.value["outcome"] for r in results}
    assert {outcomes[t["touch_id"]] for t in touches} == {"delivered"}


async def until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the sender did not read the orders in time"
        await asyncio.sleep(0.1)


async def test_orders_on_shopper_events_become_the_true_count(broker, tmp_path):
    from test_sender_service import start_service

    names = TopicNames(f"proof-{uuid.uuid4().hex[:8]}-")
    await ensure_topics(broker.bootstrap, [names.shopper_events], 2)
    # the sender's clock is 2026-11-02T16:05Z: the default window is Oct 27 to Nov 2 (UTC)
    records = [
        *(order("demo", n, f"2026-10-{27 + n % 5}T12:00:00Z", SHIRT) for n in range(11)),
        order("demo", 11, "2026-10-26T23:59:00Z", SHIRT, MUG),  # a day before the window
        order("demo", 3, "2026-10-30T12:00:00Z", SHIRT),  # stage A's copy of order 3
        *(order("acme", n, "2026-11-01T12:00:00Z", SHIRT) for n in range(30)),
        *(
            order("small", n, f"{day}T12:00:00Z", SHIRT)
            for n, day in enumerate(("2026-10-31", "2026-11-01", "2026-11-02"))
        ),
    ]
    batch = {"batch": records[-3:]}  # stage A packs a partition's records into one message
    await produce(broker.bootstrap, names.shopper_events,
                  [(r["shopper"], r) for r in records[:-3]] + [("small:s0", batch)])  # fmt: skip
    service, stop, task = await start_service(broker, tmp_path, names, policies())
    try:
        await deliver(broker, names, [
            hesitant("t_demo", "demo", MUG, SHIRT),  # 11 orders of the shirt: from 10 on
            hesitant("t_fresh", "fresh", SHIRT),  # a store nobody ordered from yet
            hesitant("t_small", "small", SHIRT),  # its own window (2d) and threshold (2)
            hesitant("t_mug", "demo", MUG),  # 1 order: below the threshold
        ])  # fmt: skip
        # one more order while the sender runs; then a copy of it, which changes nothing
        late = order("demo", 12, "2026-11-02T15:00:00Z", SHIRT)
        await produce(broker.bootstrap, names.shopper_events, [("demo:s12", late)] * 2)
        today = day_of(DUE)
        await until(lambda: service.orders.count("demo", "p:shirt-1", today, 7) == 12)
        await deliver(broker, names, [hesitant("t_demo2", "demo", SHIRT)])
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    texts = sent(tmp_path)
    assert CLAIM.format(n=11, d=7) in texts["t_demo"]
    assert CLAIM.format(n=12, d=7) in texts["t_demo2"]
    assert CLAIM.format(n=2, d=2) in texts["t_small"]  # Nov 1 and 2; Oct 31 is outside
    for plain in ("t_fresh", "t_mug"):
        assert "orders" not in texts[plain] and "Popular" not in texts[plain]
        assert "Pick up where you left off" in texts[plain]  # the reminder, without a claim
    assert longest_window(policies()) == 7

    # A new sender process rebuilds the counts from shopper-events before it sends.
    restarted = tmp_path / "restarted"
    again, stop, task = await start_service(broker, restarted, names, policies())
    try:
        await deliver(broker, names, [hesitant("t_after", "demo", MUG, SHIRT)])
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert CLAIM.format(n=12, d=7) in sent(restarted)["t_after"]
    assert again.orders.count("acme", "p:shirt-1", day_of(DUE), 7) == 30
