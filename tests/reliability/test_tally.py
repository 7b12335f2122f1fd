"""The counts themselves: each one must see the fault it is named after (and only that)."""

from __future__ import annotations

from typing import Any

from recovery.ids import shopper_key
from tests.pipeline.helpers import T0, cart, iso, order
from tests.reliability.tally import (
    Tally,
    after_order,
    after_redaction,
    compare,
    delivered,
    leaks,
    render,
)

HOUR = 3600.0


def touch(touch_id: str, checkout: str, due: float, customer: str, **extra: Any) -> dict:
    return {
        "touch_id": touch_id,
        "cart": checkout,
        "shopper": shopper_key("pipe", customer),
        "channel": "email",
        "step": 1,
        "due_at": iso(due),
        "template": "reminder",
        **extra,
    }


def test_compare_counts_lost_differing_and_stuck_but_not_same_repeats():
    core = [touch("a", "c1", T0, "ann"), touch("b", "c2", T0, "bob"), touch("c", "c3", T0, "cy")]
    stream = [
        core[0],
        core[0],  # an at-least-once repeat of the same command
        {**core[1], "due_at": iso(T0 + HOUR)},  # the same id, another due time
        touch("x", "c9", T0, "ann"),  # a touch the core never decided
    ]
    tally = Tally("t")
    compare(tally, core, stream)
    assert (tally.lost, tally.differing, tally.stuck) == (1, 2, 1)
    assert (tally.expected, tally.emitted) == (3, 3)


def test_delivered_counts_touch_ids_delivered_twice():
    tally = Tally("t")
    delivered(tally, [{"touch_id": "a"}, {"touch_id": "b"}, {"touch_id": "a"}])
    assert tally.duplicated == 1


def test_after_order_spares_a_cart_open_at_the_order_and_new_activity():
    events = [
        cart("c1", "310", T0, customer="ann"),
        cart("c2", "310", T0 + 10, customer="ann"),  # still open when c1 is ordered
        order("c1", "310", T0 + 20, customer="ann"),
        cart("c3", "310", T0 + 2 * HOUR, customer="bob"),
        order("c4", "90", T0 + 5 * HOUR, customer="bob"),  # bob's c3 was abandoned by then
        cart("c5", "310", T0 + 6 * HOUR, customer="bob"),  # new activity after the order
    ]
    touches = [
        touch("t1", "c1", T0 + HOUR, "ann"),  # after its own order
        touch("t2", "c2", T0 + 2 * HOUR, "ann"),
        touch("t3", "c3", T0 + 6 * HOUR, "bob"),  # after the order that ended its plan
        touch("t4", "c5", T0 + 7 * HOUR, "bob"),
        touch("t5", "c1", T0 + 9 * HOUR, "ann", template="audience_remove"),
    ]
    tally = Tally("t")
    after_order(tally, events, touches)
    assert tally.after_order == 2


def test_after_redaction_counts_carts_from_before_it_only():
    ann = shopper_key("pipe", "ann")
    events = [
        cart("c1", "310", T0, customer="ann"),
        cart("c2", "310", T0 + 5 * HOUR, customer="ann"),
    ]
    touches = [
        touch("t1", "c1", T0 + HOUR, "ann"),  # due before the redaction
        touch("t2", "c1", T0 + 3 * HOUR, "ann"),  # due after it: the one counted
        touch("t3", "c2", T0 + 6 * HOUR, "ann"),  # new activity
    ]
    tally = Tally("t")
    after_redaction(tally, events, touches, {ann: T0 + 2 * HOUR})
    assert tally.after_redaction == 1


def test_leaks_and_the_table():
    found = leaks(
        {"log": "token=tok_acme_generic_123 for a@b.example"}, ["tok_acme_generic_123", "x"]
    )
    assert found == [("log", "tok_acme_generic_123")]
    tally = Tally("scenario", lost=2, notes={"kills": 3})
    assert tally.failures() == {"lost": 2}
    table = render([tally])
    assert "scenario" in table and "kills: 3" in table
