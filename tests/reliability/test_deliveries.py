"""Duplicate, reordered and stale deliveries, and poison amounts, into the running stream.

The platforms deliver at least once and out of order; stage A re-sends its records after a
crash. None of it may change a decision: the stream fed the mangled input must emit exactly the
touches the pure core decides for the clean input (invariants 5, 7 and 8).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest

from cartbands.replay import send_ticks
from recovery.checkouts import iso
from tests.reliability.checks import contacts, settle, worker_logs
from tests.reliability.harness import (
    Sender,
    Timed,
    core_run,
    paced_replay,
    policy_file,
    recorded_run,
    seeded_events,
    send_records,
)
from tests.reliability.tally import Tally

pytestmark = pytest.mark.broker

DAY = 86400.0


def mangled(events: Timed, seed: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Extra deliveries (event id -> sent right after it) and how many of each kind."""
    rng = random.Random(seed)
    extra: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counts = {"repeats": 0, "stale": 0, "stale new id": 0, "same body new id": 0}
    by_checkout: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for at, event in events:
        by_checkout[event["checkout"]].append((at, event))
        if rng.random() < 0.1:  # a webhook delivered twice
            extra[event["event_id"]].append(event)
            counts["repeats"] += 1
    for history in by_checkout.values():
        updates = [e for _, e in history if e["type"] == "cart_updated"]
        last_at, last = history[-1]
        if len(updates) >= 2 and rng.random() < 0.4:  # an older snapshot after a newer one
            extra[last["event_id"]].append(updates[0])
            stale = {**updates[0], "event_id": f"{updates[0]['event_id']}-again"}
            extra[last["event_id"]].append(stale)
            counts["stale"] += 1
            counts["stale new id"] += 1
        if last["type"] == "cart_updated" and rng.random() < 0.4:
            # the same snapshot again under a new webhook id, hours after the abandonment
            later = next((e for at, e in events if at > last_at + 3 * 3600), None)
            if later is not None:
                again = {**last, "event_id": f"{last['event_id']}-redelivered"}
                extra[later["event_id"]].append(again)
                counts["same body new id"] += 1
    return dict(extra), counts


def test_duplicate_reordered_and_resent_deliveries(broker, workers, tmp_path):
    policy = policy_file(tmp_path)
    events = seeded_events(900, seed=41)
    core = recorded_run(events, policy)
    extra, counts = mangled(events, seed=41)
    sender = Sender(workers, policy)
    sender.start()
    worker = workers.start(policy, "--clock", "event")
    # stage A re-sends some abandonments after their plans ended (as after a crash)
    resent = random.Random(41).sample(core.abandoned, 12)
    try:
        asyncio.run(paced_replay(workers, events, 8.0, extra=extra))
        send_records(workers, workers.names.shopper_events, resent)
        asyncio.run(
            send_ticks(broker.bootstrap, workers.names.cart_events, [events[-1][0] + 9 * DAY])
        )
        tally = settle(Tally("duplicates, reorders, re-sends"), workers, sender, events, core,
                       [worker])  # fmt: skip
    finally:
        sender.stop_all()
    tally.leaks += len(contacts(events, worker_logs(workers), sender.log_text()))
    tally.notes.update(counts, **{"re-sent abandonments": len(resent)})
    tally.record()
    assert worker.poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()


POISON = ("1e400", "1" * 30, "9" * 5000, "NaN", "-Infinity")


def test_poison_amounts_never_stick_a_shopper(broker, workers, tmp_path):
    policy = policy_file(tmp_path)
    events = seeded_events(600, seed=43)
    core = core_run(events, policy)
    # before some shoppers' real carts: a cart of theirs with an amount no currency has
    firsts: dict[str, tuple[float, dict[str, Any]]] = {}
    for at, event in events:
        firsts.setdefault(event["checkout"], (at, event))
    planned = {t["cart"] for t in core.touches}
    victims = sorted(c for c in firsts if c in planned and firsts[c][1].get("contact"))[:10]
    poisoned = []
    for number, checkout in enumerate(victims):
        at, event = firsts[checkout]
        total = POISON[number % len(POISON)]
        poisoned.append((at - 1800, {
            **event, "checkout": f"{checkout}-poison", "event_id": f"{event['event_id']}-p",
            "occurred_at": iso(at - 1800), "total": total,
            "line_items": [{"title": "thing", "quantity": 1, "price": total}],
        }))  # fmt: skip
    sender = Sender(workers, policy)
    sender.start()
    worker = workers.start(policy, "--clock", "event")
    try:
        mixed = sorted([*events, *poisoned], key=lambda pair: pair[0])
        asyncio.run(paced_replay(workers, mixed, 6.0))
        tally = settle(Tally("poison amounts"), workers, sender, events, core, [worker])
    finally:
        sender.stop_all()
    tally.leaks += len(contacts(events, worker_logs(workers), sender.log_text()))
    tally.notes["poison carts"] = len(poisoned)
    tally.record()
    assert worker.poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()
