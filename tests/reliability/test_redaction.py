"""Redaction races (invariant 6): nothing derived from what a shopper gave before a redaction
reaches the shopper after it, whatever order the records take through the stream; new
activity after the redaction starts anew.

The worker starts after the whole input is in the topics, as a worker that lags does: it then
reads ``cart-events`` (with the ticks that abandon the checkouts) and ``shopper-events`` (with
the redactions) side by side, and stage A learns of a redaction only through stage B.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from recovery.checkouts import epoch, iso
from recovery.ids import shopper_key
from tests.pipeline.helpers import cart, order
from tests.reliability.checks import contacts, settle, worker_logs
from tests.reliability.harness import (
    Sender,
    Timed,
    core_run,
    paced_replay,
    policy_file,
    seeded_events,
    timed,
)
from tests.reliability.tally import Tally

pytestmark = pytest.mark.broker

STORE = "race"
MINUTE, HOUR = 60.0, 3600.0
SHOPPERS = 6  # of each race


def redaction(customer: str, at: float) -> tuple[str, str, dict[str, Any]]:
    key = shopper_key(STORE, customer)
    assert key is not None
    record = {
        "type": "shopper_redacted",
        "store": STORE,
        "event_id": f"redact-{customer}",
        "occurred_at": iso(at),
        "customer_id": customer,
    }
    return key, iso(at), record


def sequence(touches: list[dict[str, Any]], carts: set[str]) -> set[tuple[Any, ...]]:
    """(cart, step, channel, due time) of each touch of ``carts``."""
    return {
        (t["cart"], t["step"], t["channel"], epoch(t["due_at"], "due_at"))
        for t in touches
        if t["cart"] in carts
    }


def races(start: float) -> tuple[Timed, Timed, dict[str, float], list[tuple[float, Any]]]:
    """(every event, the events the core must decide on, redaction times by shopper key,
    (time, redaction) pairs)."""
    given: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    redactions: list[tuple[float, Any]] = []
    for n in range(SHOPPERS):
        t = start + n * MINUTE
        # open: redacted 10 minutes in, while the checkout is still open; it then abandons
        given.append(cart(f"open-{n}", "310", t, store=STORE, customer=f"open-{n}"))
        redactions.append((t + 10 * MINUTE, redaction(f"open-{n}", t + 10 * MINUTE)))
        # order: abandoned, first touch sent; then the redaction and an order, one second apart
        ordered = cart(f"ord-{n}", "120", t, store=STORE, customer=f"ord-{n}")
        done = order(f"ord-{n}", "120", t + 3 * HOUR + n % 2, store=STORE, customer=f"ord-{n}")
        given += [ordered, done]
        redactions.append((t + 3 * HOUR + (1 - n % 2), redaction(f"ord-{n}", t + 3 * HOUR)))
        # again: redacted while open, then a new cart hours later (new activity)
        given.append(cart(f"old-{n}", "700", t, store=STORE, customer=f"again-{n}"))
        redactions.append((t + 10 * MINUTE, redaction(f"again-{n}", t + 10 * MINUTE)))
        fresh = cart(f"new-{n}", "700", t + 6 * HOUR, store=STORE, customer=f"again-{n}")
        given.append(fresh)
        kept.append(fresh)
        # control: never redacted
        control = cart(f"ctl-{n}", "310", t, store=STORE, customer=f"ctl-{n}")
        given.append(control)
        kept.append(control)
    times = {record[0]: at for at, record in redactions}
    return timed(given), timed(kept), times, redactions


def test_redaction_races_with_abandonment_and_orders(broker, workers, tmp_path):
    policy = policy_file(tmp_path)
    background = seeded_events(300, seed=53)
    given, kept, times, redactions = races(background[0][0] + HOUR)
    events = sorted([*background, *given], key=lambda pair: pair[0])
    core = core_run(sorted([*background, *kept], key=lambda pair: pair[0]), policy)
    # each redaction goes to shopper-events right after the last event before its time
    side: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for at, (key, _, record) in redactions:
        before = max((e for t, e in events if t <= at), key=lambda e: e["occurred_at"])
        side.setdefault(before["event_id"], []).append((workers.names.shopper_events, key, record))
    asyncio.run(paced_replay(workers, events, 0.0, side=side))
    sender = Sender(workers, policy)
    sender.start()
    worker = workers.start(policy, "--clock", "event")
    try:
        # an "ord" shopper's first touch is due before the redaction, but a lagging worker may
        # decide it after the redaction: sent or not, both keep the promises counted here
        # A new cart after a redaction: its plan's number (so its touch ids) may count on from
        # before the redaction or start anew; what it must get is the core's sequence.
        ordered = {e["checkout"] for _, e in given if e["checkout"].startswith("ord-")}
        fresh = {e["checkout"] for _, e in kept if e["checkout"].startswith("new-")}
        tally = settle(Tally("redaction races"), workers, sender, events, core, [worker],
                       redactions=times, ignore=ordered | fresh)  # fmt: skip
        tally.lost += len(sequence(core.touches, fresh) - sequence(sender.lines(), fresh))
    finally:
        sender.stop_all()
    tally.leaks += len(contacts(events, worker_logs(workers), sender.log_text()))
    tally.notes["redactions"] = len(redactions)
    tally.record()
    assert worker.poll() is None, workers.logs()
    assert tally.failures() == {}, workers.logs()
