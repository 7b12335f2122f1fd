"""Invariant 6 whatever order records arrive in: a redaction wins over every record derived from
what the shopper gave before it, an abandonment a tick stamps after the redaction included;
only activity after the redaction (a cart updated after it) starts anew."""

from __future__ import annotations

import pytest

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shopper_holds as holding
from recovery import shoppers as stage_b
from recovery.ids import checkout_key
from recovery.policy import StorePolicy
from recovery.shopper_records import shopper_event
from schemas.codec import dumps
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, iso, wire

HOUR = 3600.0
DAY = 86400.0
STORE = "race"


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return load_policy().for_store(STORE)


def checkout(event: dict, policy: StorePolicy) -> dict:
    state, _ = stage_a.apply_event(None, event, 0, policy)
    assert state is not None
    return state


def abandoned(event: dict, tick: float, policy: StorePolicy) -> tuple[str, dict]:
    state = checkout(event, policy)
    _, effects = stage_a.apply_tick(state, checkout_key(STORE, event["checkout"]), tick)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.key is not None and effect.record is not None
    return effect.key, wire(effect.record)


def redaction(shopper: str, at: float) -> dict:
    return {"type": "shopper_redacted", "store": STORE, "shopper": shopper, "occurred_at": iso(at)}


def test_an_abandonment_stamped_after_the_redaction_of_a_cart_given_before_is_refused(policy):
    """Stage A's erasure reached cart-events after the tick that abandoned the checkout."""
    shopper, gone = abandoned(cart("rr-1", "310", store=STORE, customer="ann"), T0 + HOUR, policy)
    state, _ = stage_b.apply_record(
        None, shopper, shopper_event(redaction(shopper, T0 + HOUR / 2)), 0, policy
    )
    state, out = stage_b.apply_record(state, shopper, shopper_event(gone), 0, policy)
    assert not out.planned and state.pl is None
    assert [r["checkout"] for r in out.redact_checkouts] == ["rr-1"]  # stage A forgets it
    assert "ann@example.com" not in dumps(state).decode()
    state, due = stage_b.apply_due(state, shopper, T0 + 10 * DAY, policy, code_secret(STORE))
    assert not due.touches


def test_a_cart_updated_after_the_redaction_starts_anew(policy):
    shopper, later = abandoned(
        cart("rr-2", "310", T0 + 2 * HOUR, store=STORE, customer="bo"), T0 + 3 * HOUR, policy
    )
    state, _ = stage_b.apply_record(
        None, shopper, shopper_event(redaction(shopper, T0 + HOUR)), 0, policy
    )
    state, out = stage_b.apply_record(state, shopper, shopper_event(later), 0, policy)
    assert [plan.cart for plan in out.planned] == ["rr-2"]
    # ... and an abandonment from before the redaction, arriving after that, is still refused
    _, before = abandoned(cart("rr-3", "900", store=STORE, customer="bo"), T0 + HOUR, policy)
    state, out = stage_b.apply_record(state, shopper, shopper_event(before), 0, policy)
    assert not out.planned and state.pl.ck == "rr-2"


def test_a_held_abandonment_of_a_cart_given_before_goes_with_the_redaction(policy):
    shopper, gone = abandoned(cart("rr-4", "310", store=STORE, customer="cy"), T0 + HOUR, policy)
    held = holding.hold(None, shopper_event(gone), 0)
    new, _ = holding.apply_now(
        held, shopper, shopper_event(redaction(shopper, T0 + HOUR / 2)), 0, policy
    )
    assert new is not None and not new.q
    assert "cy@example.com" not in dumps(new).decode()


def test_a_repeated_redaction_does_not_erase_what_came_after_it(policy):
    shopper, later = abandoned(
        cart("rr-5", "310", T0 + 2 * HOUR, store=STORE, customer="di"), T0 + 3 * HOUR, policy
    )
    erase = redaction(shopper, T0 + HOUR)
    state, _ = stage_b.apply_record(None, shopper, shopper_event(erase), 0, policy)
    state, _ = stage_b.apply_record(state, shopper, shopper_event(later), 0, policy)
    again, out = stage_b.apply_record(state, shopper, shopper_event(erase), 0, policy)
    assert again.pl == state.pl and not out.to_every_checkout_partition


def test_stage_a_erases_what_was_given_before_the_redaction_only(policy):
    before = checkout(cart("rr-6", "310", store=STORE, customer="ed"), policy)
    after = checkout(cart("rr-7", "310", T0 + 2 * HOUR, store=STORE, customer="ed"), policy)
    gone, _ = stage_a.apply_tick(before, checkout_key(STORE, "rr-6"), T0 + HOUR)
    assert gone is not None and gone.st == "abandoned"
    erase = redaction(before.sh, T0 + HOUR + 60)
    assert stage_a.erased_by(erase, checkout_key(STORE, "rr-6"), before)
    assert stage_a.erased_by(erase, checkout_key(STORE, "rr-6"), gone)  # late: abandoned already
    assert not stage_a.erased_by(erase, checkout_key(STORE, "rr-7"), after)


def test_a_checkout_s_erasure_keeps_a_cart_updated_after_the_redaction(policy):
    """Stage B refuses an abandonment of a cart given before the redaction and erases the
    checkout; by the time that reaches stage A, the shopper may have updated it again."""
    shopper, gone = abandoned(cart("rr-8", "310", store=STORE, customer="gus"), T0 + HOUR, policy)
    state, _ = stage_b.apply_record(
        None, shopper, shopper_event(redaction(shopper, T0 + HOUR / 2)), 0, policy
    )
    _, out = stage_b.apply_record(state, shopper, shopper_event(gone), 0, policy)
    (erase,) = out.redact_checkouts
    before = checkout(cart("rr-8", "310", store=STORE, customer="gus"), policy)
    after = checkout(cart("rr-8", "320", T0 + 2 * HOUR, store=STORE, customer="gus"), policy)
    assert stage_a.erases_checkout(erase, before)
    assert not stage_a.erases_checkout(erase, after)
