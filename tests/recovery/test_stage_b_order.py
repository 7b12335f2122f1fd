"""Stage B holds a record beyond its partition's watermark and applies it once the watermark
passes, in stage A's time order: the order the pure core's replay applies records in."""

from __future__ import annotations

import msgspec
import pytest

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shopper_holds as holding
from recovery import shoppers as stage_b
from recovery.checkouts import BadEvent
from recovery.ids import checkout_key
from recovery.policy import StorePolicy
from recovery.shopper_records import order_key, shopper_event
from recovery.shopper_state import ShopperState
from tests.pipeline.helpers import T0, cart, order, wire

HOUR = 3600.0


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return load_policy().defaults


def abandoned(record: dict, tick: float, policy: StorePolicy) -> tuple[str, dict]:
    """Stage A's ``cart_abandoned`` for ``record`` at the tick ``tick``."""
    state, _ = stage_a.apply_event(None, record, 0, policy)
    key = checkout_key(record["store"], record["checkout"])
    _, effects = stage_a.apply_tick(state, key, tick)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.key is not None and effect.record is not None
    return effect.key, wire(effect.record)


def converted(record: dict, policy: StorePolicy) -> dict:
    _, effects = stage_a.apply_event(None, record, 0, policy)
    (effect,) = [e for e in effects if e.kind == "converted"]
    assert effect.record is not None
    return wire(effect.record)


def test_stage_a_stamps_its_time_ticks_before_events_of_the_same_time(policy):
    _, gone = abandoned(cart("o-1", "120", store="ord", customer="ann"), T0 + HOUR, policy)
    bought = converted(order("o-2", "80", T0 + HOUR, store="ord", customer="ann"), policy)
    assert order_key(shopper_event(gone)) == (T0 + HOUR, 0)
    assert order_key(shopper_event(bought)) == (T0 + HOUR, 1)
    assert order_key(shopper_event({"type": "consent_changed"})) is None
    for stamp in ([True, 0], [1], [T0, 2]):  # not stage A's: refused rather than misplaced
        with pytest.raises(BadEvent, match=r"^sk"):
            shopper_event({"type": "consent_changed", "sk": stamp})


def test_a_record_is_held_until_the_watermark_passes_it(policy):
    bought = converted(order("o-3", "80", T0 + 2 * HOUR, store="ord", customer="bo"), policy)
    typed = shopper_event(bought)
    assert holding.holds(typed, None)  # no watermark yet
    assert holding.holds(typed, T0 + HOUR)
    assert holding.holds(typed, T0 + 2 * HOUR)  # an event of the tick's time comes after it
    assert not holding.holds(typed, T0 + 2 * HOUR + 1)
    consent = shopper_event({"type": "consent_changed", "channel": "sms"})
    assert not holding.holds(consent, None)


def test_held_records_are_released_in_order_and_later_ones_stay(policy):
    shopper, gone = abandoned(cart("o-4", "120", store="ord", customer="cy"), T0 + HOUR, policy)
    late = converted(order("o-5", "80", T0 + 3 * HOUR, store="ord", customer="cy"), policy)
    early = converted(order("o-6", "60", T0 + 30 * 60, store="ord", customer="cy"), policy)
    state = None
    for record in (late, gone, early):  # as three stage-A partitions might deliver them
        state = holding.hold(state, shopper_event(record), 2)
    assert state is not None and [r.checkout for r in state.q] == ["o-6", "o-4", "o-5"]
    assert holding.due_of(state) == T0 + 30 * 60

    released, outs = holding.release(state, shopper, T0 + HOUR, 2, policy)
    assert released is not None and len(outs) == 2
    assert [r.checkout for r in released.q] == ["o-5"]
    assert released.pr.oc == 1  # the earlier order counted before the abandonment
    assert released.pl.ck == "o-4"  # ... which then got a plan
    assert released.seq > state.seq and holding.due_of(released) == released.nd

    ended, outs = holding.release(released, shopper, T0 + 3 * HOUR + 1, 2, policy)
    assert ended is not None and not ended.q and ended.qd is None
    assert ended.pl is None and ended.pr.oc == 2  # the later order ended the plan


def test_same_result_as_applying_in_order(policy):
    shopper, gone = abandoned(cart("o-7", "310", store="ord", customer="di"), T0 + HOUR, policy)
    bought = converted(order("o-8", "90", T0 + 2 * HOUR, store="ord", customer="di"), policy)
    direct, _ = stage_b.apply_record(None, shopper, shopper_event(gone), 1, policy)
    direct, _ = stage_b.apply_record(direct, shopper, shopper_event(bought), 1, policy)
    held = holding.hold(holding.hold(None, shopper_event(bought), 1), shopper_event(gone), 1)
    released, _ = holding.release(held, shopper, T0 + 3 * HOUR, 1, policy)
    assert released is not None and direct is not None
    assert msgspec.structs.replace(released, seq=0) == msgspec.structs.replace(direct, seq=0)


def test_a_row_that_only_held_records_goes_when_they_make_no_shopper(policy):
    left = {"type": "cart_reopened", "store": "ord", "shopper": "ord:x", "checkout": "o-9",
            "occurred_at": "2026-11-02T16:00:00Z", "sk": [T0 + HOUR, 1]}  # fmt: skip
    held = holding.hold(None, shopper_event(left), 0)
    assert held == ShopperState(pt=held.pt, seq=held.seq, q=held.q, qd=held.qd)
    assert holding.release(held, "ord:x", T0 + 2 * HOUR, 0, policy) == (None, [stage_b.Outputs()])


def test_a_record_applied_at_once_keeps_the_held_ones(policy):
    shopper, gone = abandoned(cart("o-10", "120", store="ord", customer="ed"), T0 + HOUR, policy)
    later = converted(order("o-11", "80", T0 + 5 * HOUR, store="ord", customer="ed"), policy)
    state = holding.hold(None, shopper_event(later), 0)
    new, _ = holding.apply_now(state, shopper, shopper_event(gone), 0, policy)
    assert new is not None and new.q == [shopper_event(later)] and new.pl.ck == "o-10"
    assert new.seq > state.seq


def test_an_unknown_record_is_refused_rather_than_held(policy):
    with pytest.raises(BadEvent):
        holding.hold(None, shopper_event({"type": "cart_exploded", "sk": [T0, 1]}), 0)
    with pytest.raises(BadEvent):
        stage_b.apply_record(None, "s:x", shopper_event({"type": "cart_exploded"}), 0, policy)


def test_a_redaction_takes_the_records_held_from_before_it(policy):
    shopper, gone = abandoned(cart("o-12", "120", store="ord", customer="fi"), T0 + HOUR, policy)
    later = converted(order("o-13", "80", T0 + 5 * HOUR, store="ord", customer="fi"), policy)
    state = holding.hold(holding.hold(None, shopper_event(gone), 0), shopper_event(later), 0)
    erase = {"type": "shopper_redacted", "store": "ord", "shopper": shopper,
             "occurred_at": stage_a.iso(T0 + 2 * HOUR)}  # fmt: skip
    new, _ = holding.apply_now(state, shopper, shopper_event(erase), 0, policy)
    assert new is not None and new.rd == T0 + 2 * HOUR
    assert (
        new.q == [shopper_event(later)] and new.qd == T0 + 5 * HOUR
    )  # the cart held before is gone
