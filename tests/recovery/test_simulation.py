"""The whole pipeline in one process (the simulator) over the pure stage A and B transitions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson

from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch
from recovery.simulate import simulate
from schemas.cart_events import cart_event_of
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, order, without_holdout

POLICY = load_policy(without_holdout(DEFAULT_POLICY, Path(tempfile.mkdtemp()) / "p.yaml"))
HOUR = 3600.0


def run(*events):
    timed = sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    return simulate(timed, POLICY, code_secret)


def by_cart(sim, checkout):
    return sorted((t for t in sim.touches if t["cart"] == checkout), key=lambda t: t["step"])


def test_high_band_sequence_in_order_with_discount_only_on_step_four():
    sim = run(cart("h1", "310"))
    touches = by_cart(sim, "h1")
    assert [(t["step"], t["channel"]) for t in touches] == [
        (1, "email"), (2, "ads"), (3, "sms"), (4, "email"), (5, "human"),
    ]  # fmt: skip
    assert [t["step"] for t in touches if t["incentive"]] == [4]
    assert touches[3]["incentive"]["kind"] == "percent_off"
    assert touches[3]["incentive"]["code"]
    assert touches[3]["due_at"] == touches[4]["due_at"]  # the code and the person at 48 h
    assert {t["band"] for t in touches} == {"high"}


def test_order_between_touches_stops_the_sequence():
    sim = run(cart("m1", "120"), order("m1", "120", T0 + 3 * HOUR))
    assert [t["step"] for t in by_cart(sim, "m1")] == [1]
    assert sim.recoveries and sim.recoveries[0]["same_cart"]


def test_order_through_another_checkout_of_the_same_shopper_stops_it():
    sim = run(
        cart("m1", "120", customer="ann"),
        cart("m2", "80", T0 + 2 * HOUR, customer="ann"),
        order("m2", "80", T0 + 2.5 * HOUR, customer="ann"),
    )
    assert [t["step"] for t in by_cart(sim, "m1")] == [1]
    assert by_cart(sim, "m2") == []


def test_duplicates_and_out_of_order_deliveries_give_one_plan():
    first = cart("h1", "310", event_id="d1")
    newer = cart("h1", "320", T0 + 60, event_id="d2")
    sim = run(first, newer, first, newer)
    touches = by_cart(sim, "h1")
    assert len({t["touch_id"] for t in touches}) == len(touches)
    assert {t["cart_summary"]["total"] for t in touches} == {"320"}


def test_same_input_same_decisions():
    events = [cart("h1", "310"), cart("v1", "900", T0 + 30), order("h1", "310", T0 + 30 * HOUR)]
    first, second = run(*events), run(*events)
    assert first.touches == second.touches
    assert first.touches


def test_holdout_carts_get_no_touches_but_conversions_are_tracked():
    events = []
    for i in range(60):
        events += [cart(f"x{i}", "120", T0 + i), order(f"x{i}", "120", T0 + 2 * 86400 + i)]
    timed = sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    sim = simulate(timed, load_policy(), code_secret)
    control = [r for r in sim.recoveries if r["holdout"]]
    treated = [r for r in sim.recoveries if not r["holdout"]]
    assert control, "5% of 60 carts should put at least one in the control group"
    assert treated
    touched = {t["cart"] for t in sim.touches}
    assert all(r["checkout"] not in touched for r in control)
    assert all(r["touches_sent"] == [] for r in control)


def test_an_event_whose_type_is_not_a_string_is_rejected_and_the_rest_goes_on():
    bad = {**cart("odd", "310"), "type": ["cart_updated"]}
    sim = run(bad, cart("fine", "42"))
    assert [reason for _, reason in sim.rejected] == ["type: expected str | null, got array"]
    assert by_cart(sim, "fine") and not by_cart(sim, "odd")


def test_cart_events_read_into_structs_give_what_their_records_give():
    """The core benchmark hands the simulator cart events read at the edge, as the worker's
    agent reads a message; a run holding one the stage refuses is folded record by record,
    and that one is dead-lettered as it was sent."""
    events = [
        cart("s1", "75", T0),
        cart("s2", "310", T0 + 60),
        {**cart("s3", "120", T0 + 90), "currency": "US"},  # refused: not an ISO-4217 code
        order("s1", "75", T0 + 2 * HOUR),
        cart("s4", "900", T0 + 3 * HOUR),
    ]
    timed = sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    typed = [(at, cart_event_of(orjson.dumps(e))) for at, e in timed]
    assert all(event is not None for _, event in typed)
    as_records = simulate(timed, POLICY, code_secret)
    as_structs = simulate(typed, POLICY, code_secret)
    assert as_structs.touches == as_records.touches
    assert as_structs.recoveries == as_records.recoveries
    assert as_structs.carts == as_records.carts
    assert as_structs.rejected == as_records.rejected
    assert [reason.split(":")[0] for _, reason in as_structs.rejected] == ["currency"]
    assert len(as_structs.touches) > 4
