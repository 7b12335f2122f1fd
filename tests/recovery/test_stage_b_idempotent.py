"""Invariant 8 in stage B: a plan is identified by its cart and abandonment (checkout, cycle);
a repeated or stale record never re-opens an ended plan, never re-emits a touch, never drops
or replaces another plan. Stage A sends a record again after a crash (at least once)."""

from __future__ import annotations

import msgspec
import pytest

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery.ids import checkout_key
from recovery.policy import StorePolicy
from recovery.shopper_profile import MAX_ABANDONMENTS
from recovery.shopper_records import shopper_event
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, wire

HOUR = 3600.0
DAY = 86400.0
STORE = "idem"


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return load_policy().for_store(STORE)


def abandoned(record: dict, tick: float, policy: StorePolicy) -> tuple[str, dict]:
    """Stage A's ``cart_abandoned`` for the cart event ``record``, at the tick ``tick``."""
    state, _ = stage_a.apply_event(None, record, 0, policy)
    key = checkout_key(record["store"], record["checkout"])
    _, effects = stage_a.apply_tick(state, key, tick)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.key is not None and effect.record is not None
    return effect.key, wire(effect.record)


def run_until(state: dict, shopper: str, now: float, policy: StorePolicy):
    new, out = stage_b.apply_due(state, shopper, now, policy, code_secret(STORE))
    return new, [e.touch.touch_id for e in out.touches]


def test_a_repeat_after_the_plan_ended_reopens_nothing(policy):
    shopper, record = abandoned(cart("i-1", "310", store=STORE, customer="ann"), T0 + HOUR, policy)
    state, out = stage_b.apply_record(None, shopper, shopper_event(record), 0, policy)
    assert out.planned
    state, sent = run_until(state, shopper, T0 + 10 * DAY, policy)
    assert sent and state.pl is None  # the sequence finished
    # Stage A crashed and sends the same abandonment again, days later.
    again, out = stage_b.apply_record(state, shopper, shopper_event(record), 0, policy)
    assert not out.planned and again.pl is None
    assert again.pr == state.pr  # the repeat is not a second abandonment either
    _, repeated = run_until(again, shopper, T0 + 20 * DAY, policy)
    assert repeated == []


def test_a_repeat_never_replaces_another_cart_s_active_plan(policy):
    shopper, worth_more = abandoned(
        cart("i-2", "900", store=STORE, customer="bo"), T0 + HOUR, policy
    )
    state, _ = stage_b.apply_record(None, shopper, shopper_event(worth_more), 0, policy)
    state, _ = run_until(state, shopper, T0 + 10 * DAY, policy)
    assert state.pl is None
    _, other = abandoned(cart("i-3", "120", T0 + 11 * DAY, store=STORE, customer="bo"),
                         T0 + 11 * DAY + HOUR, policy)  # fmt: skip
    state, _ = stage_b.apply_record(state, shopper, shopper_event(other), 0, policy)
    assert state.pl.ck == "i-3"
    state, out = stage_b.apply_record(state, shopper, shopper_event(worth_more), 0, policy)
    assert state.pl.ck == "i-3" and not out.planned


def test_a_repeat_while_its_plan_is_active_changes_nothing(policy):
    shopper, record = abandoned(cart("i-4", "310", store=STORE, customer="cy"), T0 + HOUR, policy)
    state, _ = stage_b.apply_record(None, shopper, shopper_event(record), 0, policy)
    state, sent = run_until(state, shopper, T0 + 2 * HOUR, policy)
    assert len(sent) == 2  # the 1 h email and the retargeting audience
    again, out = stage_b.apply_record(state, shopper, shopper_event(record), 0, policy)
    assert not out.planned and not out.touches
    assert msgspec.structs.replace(again, seq=0) == msgspec.structs.replace(state, seq=0)


def test_a_kept_plan_s_rival_is_not_planned_when_it_comes_again(policy):
    """A cart that lost to the active plan (worth less) is an abandonment seen: its repeat
    after the active plan ended must not start the sequence the pure core never started."""
    shopper, big = abandoned(cart("i-5", "900", store=STORE, customer="di"), T0 + HOUR, policy)
    _, small = abandoned(cart("i-6", "60", T0 + 60, store=STORE, customer="di"),
                         T0 + HOUR + 60, policy)  # fmt: skip
    state, _ = stage_b.apply_record(None, shopper, shopper_event(big), 0, policy)
    state, out = stage_b.apply_record(state, shopper, shopper_event(small), 0, policy)
    assert not out.planned and state.pl.ck == "i-5"
    state, _ = run_until(state, shopper, T0 + 10 * DAY, policy)
    assert state.pl is None
    state, out = stage_b.apply_record(state, shopper, shopper_event(small), 0, policy)
    assert not out.planned and state.pl is None


def test_a_stale_return_to_an_earlier_cycle_does_not_end_the_new_plan(policy):
    event = cart("i-7", "310", store=STORE, customer="ed")
    policy_a = policy
    key = checkout_key(STORE, "i-7")
    checkout, _ = stage_a.apply_event(None, event, 0, policy_a)
    checkout, (first,) = stage_a.apply_tick(checkout, key, T0 + HOUR)
    back = cart("i-7", "320", T0 + 2 * HOUR, store=STORE, customer="ed")
    checkout, effects = stage_a.apply_event(checkout, back, 0, policy_a)
    (reopened,) = [e for e in effects if e.kind == "reopened"]
    checkout, (second,) = stage_a.apply_tick(checkout, key, T0 + 3 * HOUR)
    shopper = first.key
    assert shopper is not None and first.record and reopened.record and second.record
    state = None
    for record in (first.record, reopened.record, second.record):
        state, _ = stage_b.apply_record(state, shopper, record, 0, policy)
    assert state is not None and state.pl.cy == 2
    again, _ = stage_b.apply_record(state, shopper, reopened.record, 0, policy)
    assert again is not None and again.pl == state.pl
    again, out = stage_b.apply_record(again, shopper, first.record, 0, policy)
    assert again.pl == state.pl and not out.planned


def test_what_recognises_ended_plans_is_bounded(policy):
    shopper = None
    state = None
    records = []
    for n in range(3 * MAX_ABANDONMENTS):
        at = T0 + n * DAY
        shopper, record = abandoned(
            cart(f"b-{n}", "30", at, store=STORE, customer="fay"), at + HOUR, policy
        )
        records.append(record)
        state, _ = stage_b.apply_record(state, shopper, shopper_event(record), 0, policy)
    assert shopper is not None and state is not None
    assert len(state.ak) <= MAX_ABANDONMENTS
    for record in records:  # every one, remembered or older than what is remembered
        again, out = stage_b.apply_record(state, shopper, shopper_event(record), 0, policy)
        assert not out.planned and again.pl == state.pl, record["checkout"]
