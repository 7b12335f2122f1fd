"""Duplicate, reordered and stale deliveries, and poison amounts, into the running stream.

The platforms deliver at least once and out of order; stage A re-sends its records after a
crash. None of it may change a decision: the stream fed the mangled input must emit exactly the
touches the pure core decides for the clean input (invariants 5, 7 and 8).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cartbands.replay import send_ticks
from recovery.checkouts import iso
from recovery.simulate import Simulation
from tests.conftest import Workers
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


def mangled(
    events: Timed, seed: int, *, same_body: bool = False
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """Extra deliveries (event id -> sent right after that event) and how many of each kind:
    webhooks delivered twice, older snapshots after newer ones (under their own id and under a
    new one); with ``same_body``, instead, a checkout's last snapshot again under a new webhook
    id hours after the checkout was abandoned."""
    rng = random.Random(seed)
    extra: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    by_checkout: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for at, event in events:
        by_checkout[event["checkout"]].append((at, event))
        if not same_body and rng.random() < 0.1:
            extra[event["event_id"]].append(event)
            counts["repeats"] += 1
    for history in by_checkout.values():
        updates = [e for _, e in history if e["type"] == "cart_updated"]
        last_at, last = history[-1]
        if same_body:
            later = next((e for at, e in events if at > last_at + 3 * 3600), None)
            if last["type"] == "cart_updated" and later is not None and rng.random() < 0.4:
                again = {**last, "event_id": f"{last['event_id']}-redelivered"}
                extra[later["event_id"]].append(again)
                counts["same body, new id"] += 1
        elif len(updates) >= 2 and rng.random() < 0.4:
            stale = {**updates[0], "event_id": f"{updates[0]['event_id']}-again"}
            extra[last["event_id"]] += [updates[0], stale]
            counts["stale, same id"] += 1
            counts["stale, new id"] += 1
    return dict(extra), dict(counts)


def test_platform_redeliveries_repeats_and_stale_snapshots(broker, workers, tmp_path):
    policy = policy_file(tmp_path)
    events = seeded_events(900, seed=41)
    core = core_run(events, policy)
    extra, counts = mangled(events, seed=41)
    tally = _run(Tally("redeliveries, stale snapshots"), workers, policy, events, core, extra)
    tally.notes.update(counts)
    tally.record()
    assert workers.processes[-1][0].poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()


def test_same_snapshot_under_a_new_webhook_id_after_abandonment(broker, workers, tmp_path):
    """A platform that re-sends a checkout's unchanged snapshot under a new delivery id: no
    newer data, so no second plan and no second reminder."""
    policy = policy_file(tmp_path)
    events = seeded_events(900, seed=41)
    core = core_run(events, policy)
    extra, counts = mangled(events, seed=41, same_body=True)
    tally = _run(Tally("same body, new webhook id"), workers, policy, events, core, extra)
    tally.notes.update(counts)
    tally.record()
    assert workers.processes[-1][0].poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()


def test_stage_a_re_sends_after_the_plan_ended(broker, workers, tmp_path):
    """As stage A does after a crash: a ``cart_abandoned`` it had handed over already comes
    again, after the plan it started has ended (invariant 8: never re-opened)."""
    policy = policy_file(tmp_path)
    events = seeded_events(600, seed=47)
    core = recorded_run(events, policy)
    resent = random.Random(47).sample(core.abandoned, 30)

    def again() -> None:
        send_records(workers, workers.names.shopper_events, resent)
        # and time moves on, so that anything they re-planned falls due
        later = [events[-1][0] + 9 * DAY]
        asyncio.run(send_ticks(broker.bootstrap, workers.names.cart_events, later))

    tally = _run(Tally("stage A re-sends"), workers, policy, events, core, {}, then=again)
    tally.notes["re-sent abandonments"] = len(resent)
    tally.record()
    assert workers.processes[-1][0].poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()


def _run(
    tally: Tally,
    workers: Workers,
    policy: Path,
    events: Timed,
    core: Simulation,
    extra: dict[str, list[dict[str, Any]]],
    then: Callable[[], None] | None = None,
) -> Tally:
    sender = Sender(workers, policy)
    sender.start()
    worker = workers.start(policy, "--clock", "event")
    try:
        asyncio.run(paced_replay(workers, events, 6.0, extra=extra))
        if then is not None:
            then()
        settle(tally, workers, sender, events, core, [worker])
    finally:
        sender.stop_all()
    tally.leaks += len(contacts(events, worker_logs(workers), sender.log_text()))
    return tally


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
    mixed = sorted([*events, *poisoned], key=lambda pair: pair[0])
    tally = _run(Tally("poison amounts"), workers, policy, mixed, core, {})
    tally.notes["poison carts"] = len(poisoned)
    tally.record()
    assert workers.processes[-1][0].poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()
