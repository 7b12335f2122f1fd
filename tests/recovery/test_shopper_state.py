"""recovery.shopper_state: stage B's typed state, as a table holds it and as it is restored."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shopper_holds as holding
from recovery import shoppers as stage_b
from recovery.commands import touch_command
from recovery.ids import checkout_key
from recovery.policy import StorePolicy
from recovery.shopper_records import shopper_event
from recovery.shopper_state import ShopperState, stored_shopper
from schemas.codec import dumps
from tests.pipeline.helpers import T0, cart, order, wire

DAY = 86400.0
HOUR = 3600.0


@pytest.fixture(scope="module")
def policy() -> StorePolicy:
    return load_policy().for_store("typed")


def abandoned(policy: StorePolicy, checkout: str, total: str) -> tuple[str, dict[str, Any]]:
    """Stage A's ``cart_abandoned`` record of a cart, and its shopper key."""
    key = checkout_key("typed", checkout)
    state, _ = stage_a.apply_event(None, cart(checkout, total, store="typed"), 0, policy)
    _, effects = stage_a.apply_tick(state, key, T0 + DAY)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.key is not None and effect.record is not None
    return effect.key, wire(effect.record)


def a_lived_in_state(policy: StorePolicy) -> tuple[str, ShopperState]:
    """A shopper with every part set: an ended plan, an active one with touches sent, a
    deferred or decided step, sends, abandonments taken in and a record held."""
    shopper, first = abandoned(policy, "t-1", "420")
    state, _ = stage_b.apply_abandoned(None, shopper, shopper_event(first), 0, policy)
    state, _ = stage_b.apply_converted(
        state,
        shopper,
        shopper_event(
            {**order("t-1", "420", T0 + DAY + HOUR, store="typed"), "type": "cart_converted"}
        ),
        0,
        policy,
    )
    _, second = abandoned(policy, "t-2", "640")
    second = {**second, "abandoned_at": stage_a.iso(T0 + 2 * DAY)}
    state, _ = stage_b.apply_abandoned(state, shopper, shopper_event(second), 0, policy)
    state, out = stage_b.apply_due(state, shopper, T0 + 3 * DAY, policy, b"secret")
    assert out.touches, "the active plan sent touches"
    later = {**order("t-2", "640", T0 + 9 * DAY, store="typed"), "type": "cart_converted",
             "sk": [T0 + 9 * DAY, 0]}  # fmt: skip
    state = holding.hold(state, shopper_event(later), 0)
    return shopper, state


def test_every_part_is_set_in_the_lived_in_state(policy: StorePolicy) -> None:
    _, state = a_lived_in_state(policy)
    assert state.pr is not None and state.pr.oc == 1 and state.pr.se and state.pr.cv == ["t-1"]
    assert state.pl is not None and state.pl.done and state.lp is not None and state.ak
    assert state.q and state.qd == T0 + 9 * DAY and state.nd is not None


def test_a_state_read_back_from_its_changelog_is_the_same(policy: StorePolicy) -> None:
    _, state = a_lived_in_state(policy)
    restored = stored_shopper(orjson.loads(dumps(state)))
    assert restored == state
    assert dumps(restored) == dumps(state)


def test_the_stored_form_leaves_out_what_is_unset(policy: StorePolicy) -> None:
    _, state = a_lived_in_state(policy)
    stored = orjson.loads(dumps(state))
    assert set(stored) == {"pt", "seq", "nd", "pr", "pl", "lp", "ak", "q", "qd"}
    new = orjson.loads(dumps(ShopperState(pt=2)))
    assert new == {"pt": 2}


def test_a_row_with_nulls_and_arrays_gives_the_same_touches(policy: StorePolicy) -> None:
    """A row as JSON holds it with every unset part written out as null (the dict form the
    changelog also took) reads as the same state, and gets the same touches."""
    shopper, state = a_lived_in_state(policy)
    row = orjson.loads(dumps(state))
    row.update(rd=None, af=None, pl={**row["pl"], "due": {}}, lp={**row["lp"], "ho": False})
    restored = stored_shopper(row)
    assert restored == state

    def touches(found: ShopperState) -> list[dict[str, Any]]:
        _, out = stage_b.apply_due(found, shopper, T0 + 30 * DAY, policy, b"secret")
        return [touch_command(emission) for emission in out.touches]

    assert restored is not None and touches(restored) == touches(state)


def test_the_table_s_object_is_passed_through_and_nothing_is_none() -> None:
    state = ShopperState(pt=1)
    assert stored_shopper(state) is state
    assert stored_shopper(None) is None


def test_a_transition_leaves_the_state_it_was_given_as_it_was(policy: StorePolicy) -> None:
    shopper, state = a_lived_in_state(policy)
    before = dumps(state)
    stage_b.apply_due(state, shopper, T0 + 30 * DAY, policy, b"secret")
    stage_b.apply_converted(
        state,
        shopper,
        shopper_event(
            {**order("t-2", "640", T0 + 4 * DAY, store="typed"), "type": "cart_converted"}
        ),
        0,
        policy,
    )
    consent = {"type": "consent_changed", "store": "typed", "channel": "all", "granted": False,
               "occurred_at": stage_a.iso(T0 + 4 * DAY)}  # fmt: skip
    stage_b.apply_consent(state, shopper, shopper_event(consent), 0, policy)
    redaction = {"type": "shopper_redacted", "store": "typed",
                 "occurred_at": stage_a.iso(T0 + 4 * DAY)}  # fmt: skip
    stage_b.apply_redacted(state, shopper, shopper_event(redaction), 0, policy)
    holding.release(state, shopper, T0 + 10 * DAY, 0, policy)
    assert dumps(state) == before


def test_a_row_that_is_no_state_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        stored_shopper({"pt": "zero"})


def test_a_row_holding_stage_a_s_records_as_they_were_stored_reads_back_typed(
    policy: StorePolicy,
) -> None:
    """A row stored before stage B typed its records held them as the records stage A sent
    (every field, ``items`` and ``event_id`` included): restored, they are the structs stage B
    reads, and releasing them does what applying them directly does."""
    shopper, gone = abandoned(policy, "t-7", "310")
    stamped = {**gone, "sk": [T0 + DAY, 0]}
    placed = order("t-8", "90", T0 + DAY + HOUR, store="typed")
    _, effects = stage_a.apply_event(None, placed, 0, policy)
    (bought,) = [wire(e.record) for e in effects if e.kind == "converted"]
    assert bought is not None and "items" in bought and "event_id" in bought
    row = {"pt": 0, "seq": 2, "q": [stamped, bought], "qd": T0 + DAY}
    restored = stored_shopper(orjson.loads(orjson.dumps(row)))
    assert restored is not None
    assert restored.q == [shopper_event(stamped), shopper_event(bought)]
    released, outs = holding.release(restored, shopper, T0 + 2 * DAY, 0, policy)
    direct, _ = stage_b.apply_record(None, shopper, shopper_event(stamped), 0, policy)
    direct, _ = stage_b.apply_record(direct, shopper, shopper_event(bought), 0, policy)
    assert released is not None and direct is not None
    assert msgspec.structs.replace(released, seq=0) == msgspec.structs.replace(direct, seq=0)
    assert not [why for out in outs for _, why in out.rejected]


def test_a_held_record_the_schema_no_longer_takes_is_dropped_rather_than_the_shopper(
    policy: StorePolicy,
) -> None:
    """Its other held records are released when their time comes, from the first of them."""
    shopper, gone = abandoned(policy, "t-9", "310")
    kept = {**gone, "sk": [T0 + DAY + HOUR, 0]}
    unread = {"type": "cart_converted", "checkout": 9, "sk": [T0 + DAY, 1]}
    row = {"pt": 0, "seq": 3, "q": [unread, kept], "qd": T0 + DAY}
    restored = stored_shopper(orjson.loads(orjson.dumps(row)))
    assert restored is not None
    assert restored.q == [shopper_event(kept)] and restored.qd == T0 + DAY + HOUR
    released, _ = holding.release(restored, shopper, T0 + 2 * DAY, 0, policy)
    assert released is not None and released.pl is not None and released.pl.ck == "t-9"
    with pytest.raises(msgspec.ValidationError):  # anything else unreadable is not dropped
        stored_shopper({**row, "q": [kept], "pr": {"oc": "many"}})
