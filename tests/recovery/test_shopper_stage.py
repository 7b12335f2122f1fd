"""Stage B's processor without a broker: ShopperStage over an in-memory table, windows taken
and written back by hand as the agent does."""

from __future__ import annotations

import copy
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shopper_holds as holding
from recovery.clock import tick
from recovery.ids import checkout_key
from recovery.policyset import PolicySet
from recovery.shopper_records import shopper_event
from recovery.shopper_stage import ShopperEffects, ShopperStage
from recovery.stage_effects import CART_EVENTS, DEAD_LETTERS, RECOVERIES, Outgoing, State
from tests.pipeline.helpers import T0, cart, order, wire

HOUR = 3600.0
SOURCES = 2  # stage-A partitions forwarding ticks
PARTITIONS = 4


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    """The shipped policy with no control group: every cart gets its touches."""
    found = load_policy()
    bands = [b.model_copy(update={"holdout": Decimal(0)}) for b in found.defaults.bands]
    return replace(found, defaults=found.defaults.model_copy(update={"bands": bands}))


class Table(dict[str, State]):
    """One of the driver's tables: a dict, with the windows' writes stored back into it."""

    def store(self, writes: dict[str, tuple[int, State | None]]) -> None:
        for key, (_partition, state) in writes.items():
            if state is None:
                self.pop(key, None)
            else:
                self[key] = state


class Driver:
    """Stage B as the agent drives it: messages numbered by partition from ``offsets`` (where
    each partition is read from; 0 by default), the windows' effects stored in the tables."""

    def __init__(
        self,
        policies: PolicySet,
        secret: Any = None,
        table: Table | None = None,
        clocks: Table | None = None,
        offsets: dict[int, int] | None = None,
    ):
        self.table = Table() if table is None else table
        self.clocks = Table() if clocks is None else clocks
        self.offsets = dict(offsets or {})
        self.stage = ShopperStage(
            policies, secret or (lambda store: b"secret"), PARTITIONS, self.table, self.clocks
        )

    def fold(self, partition: int, key: str | None, records: list[Any]) -> None:
        offset = self.offsets.get(partition, 0)
        self.stage.fold(partition, key, records, offset)
        self.offsets[partition] = offset + 1

    def window(self, *messages: tuple[int, str | None, list[Any]]) -> ShopperEffects:
        """Fold ``(partition, key, records)`` messages, then take and store the effects."""
        for partition, key, records in messages:
            self.fold(partition, key, records)
        effects = self.stage.take()
        self.table.store(effects.writes)
        self.clocks.store(effects.clocks)
        return effects


def ticks(now: float, *sources: int) -> list[dict[str, Any]]:
    """The ticks of stage-A partitions ``sources`` (all of them by default), forwarded."""
    return [tick(now, source, SOURCES) for source in (sources or range(SOURCES))]


def abandoned(policies: PolicySet, total: str, at: float, **who: Any) -> tuple[str, dict]:
    """Stage A's ``cart_abandoned`` record for a cart updated at ``at``, abandoned an hour
    later (the shopper key, and the record as stage A forwards it)."""
    record = cart(f"c-{total}-{at}", total, at, **who)
    state, _ = stage_a.apply_event(None, record, 0, policies.defaults)
    key = checkout_key(record["store"], record["checkout"])
    _, effects = stage_a.apply_tick(state, key, at + HOUR)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.key is not None and effect.record is not None
    return effect.key, {**wire(effect.record), "shopper": effect.key}


def converted(policies: PolicySet, checkout: str, total: str, at: float, **who: Any) -> dict:
    """Stage A's ``cart_converted`` for an order of ``checkout`` abandoned an hour after T0."""
    state, _ = stage_a.apply_event(None, cart(checkout, total, T0, **who), 0, policies.defaults)
    key = checkout_key("pipe", checkout)
    state, _ = stage_a.apply_tick(state, key, T0 + HOUR)
    bought = order(checkout, total, at, **who)
    _, effects = stage_a.apply_event(state, bought, 0, policies.defaults)
    (effect,) = [e for e in effects if e.kind == "converted"]
    assert effect.record is not None
    return wire(effect.record)


def to(effects: ShopperEffects, role: str) -> list[Outgoing]:
    return [out for out in effects.records if out.to == role]


def test_a_touch_waits_for_the_slowest_stage_a_partition(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)  # mid band: email at abandonment + 1h
    first = driver.window((1, shopper, [*ticks(T0 + HOUR), gone]))
    assert [out.to for out in first.records] == [RECOVERIES]  # the plan record
    assert first.records[0].record["type"] == "plan" and first.records[0].key == shopper
    due = driver.table[shopper].nd
    assert due == T0 + 2 * HOUR and driver.table[shopper].pt == 1

    # one stage-A partition reaches the due time, the other lags: no touch yet
    early = driver.window((1, None, ticks(due, 0) + ticks(due - 1, 1)))
    assert early.records == [] and early.writes == {}
    assert [fired.now for fired in early.timers] == [T0 + HOUR, due - 1]

    late = driver.window((1, None, ticks(due, 1)))
    (touch,) = late.records
    assert touch.to == "touches.email" and touch.key == shopper
    assert touch.record["type"] == "touch" and touch.record["step"] == 1
    assert late.timers[0].due == [due] and late.timers[0].now == due
    assert late.outputs and late.outputs[0][0] == shopper
    assert driver.table[shopper].pl.done == {"1": "sent"}


def test_a_watermark_is_per_partition(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.window((2, shopper, [*ticks(T0 + HOUR), gone]))
    # every stage-A partition ticks past the due time, but on another stage-B partition
    assert driver.window((3, None, ticks(T0 + 3 * HOUR))).records == []
    assert [out.to for out in driver.window((2, None, ticks(T0 + 3 * HOUR))).records] == [
        "touches.email"
    ]


def due_on_one_source(policies: PolicySet) -> tuple[Driver, str, float]:
    """A driver of partition 1 whose shopper's first touch is due at stage-A partition 0's last
    tick (offset 1, the last message read) but not yet at partition 1's (offset 0)."""
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.window((1, shopper, [*ticks(T0 + HOUR), gone]))  # offset 0
    due = driver.table[shopper].nd
    assert driver.window((1, None, ticks(due, 0))).records == []  # offset 1
    return driver, shopper, due


def test_a_restart_keeps_the_ticks_read_before_its_committed_offset(policies):
    # the replay has ended: one stage-A partition's last tick is before the committed
    # offset, the other's after it; the touch must not wait for a tick that never comes
    driver, shopper, due = due_on_one_source(policies)
    assert driver.clocks["1"] == {"of": SOURCES, "ticks": [[0, due, 1], [1, T0 + HOUR, 0]]}

    # a new stage over the same tables, reading partition 1 again from offset 2
    again = Driver(policies, table=driver.table, clocks=driver.clocks, offsets=driver.offsets)
    (touch,) = again.window((1, None, ticks(due, 1))).records
    assert touch.to == "touches.email" and touch.key == shopper


def test_a_partition_given_back_keeps_the_ticks_read_before_its_committed_offset(policies):
    driver, _, due = due_on_one_source(policies)
    driver.stage.revoked()  # and given back: read again from offset 2
    (touch,) = driver.window((1, None, ticks(due, 1))).records
    assert touch.to == "touches.email"


def test_the_ticks_of_a_partition_revoked_mid_window_are_not_written(policies):
    driver = Driver(policies)
    driver.window((1, None, ticks(T0)))
    driver.fold(1, None, ticks(T0 + HOUR))
    driver.stage.revoked()  # what it read is another worker's to read again
    assert driver.stage.take().clocks == {}
    assert driver.clocks["1"]["ticks"] == [[0, T0, 0], [1, T0, 0]]


def test_ticks_at_or_after_the_offset_read_from_are_not_taken_back(policies):
    # the table holds ticks of a window whose offsets were not committed before the crash:
    # read again, they count where they are, not ahead of the messages before them
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.window((1, shopper, [*ticks(T0 + HOUR), gone]))  # offset 0
    due = driver.table[shopper].nd
    before = Table(copy.deepcopy(driver.table))
    fired = driver.window((1, None, ticks(due, 0)), (1, None, ticks(due, 1)))  # offsets 1, 2
    assert [out.to for out in fired.records] == ["touches.email"]
    assert driver.clocks["1"]["ticks"] == [[0, due, 1], [1, due, 2]]
    # the shopper's write of that window was lost, the ticks' kept
    again = Driver(policies, table=before, clocks=driver.clocks, offsets={1: 1})
    assert again.window((1, None, ticks(due, 0))).records == []  # offset 1: source 1 unknown
    (touch,) = again.window((1, None, ticks(due, 1))).records  # offset 2
    assert touch.to == "touches.email"


def test_a_kept_row_that_is_not_ticks_is_ignored(policies):
    driver, _, due = due_on_one_source(policies)
    for row in ({"of": 2, "ticks": [[0, "soon", 1]]}, {"ticks": []}, ["x"], None):
        clocks = Table({"1": row})  # type: ignore[dict-item]
        table = Table(copy.deepcopy(driver.table))
        again = Driver(policies, table=table, clocks=clocks, offsets=driver.offsets)
        assert again.window((1, None, ticks(due, 1))).records == []  # waits for source 0
        assert again.window((1, None, ticks(due, 0))).records != []


def test_a_record_ahead_of_the_watermark_is_held_until_it_passes(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    held = driver.window((0, shopper, [gone]))  # no watermark yet
    assert held.records == []
    (write,) = held.writes.values()
    assert write[0] == 0 and write[1] is not None and write[1].q == [shopper_event(gone)]
    assert holding.due_of(driver.table[shopper]) == T0 + HOUR

    assert driver.window((0, None, ticks(T0 + HOUR, 0))).records == []  # one source only
    released = driver.window((0, None, ticks(T0 + HOUR, 1)))
    assert [out.record["type"] for out in released.records] == ["plan"]
    assert not driver.table[shopper].q and driver.table[shopper].pl.ck


def test_bad_records_are_dead_lettered_and_the_next_is_applied(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    junk = [
        "not an object",
        {"type": "tick", "now": "soon"},
        {"type": "cart_abandoned"},  # no shopper, in the record or the key
        {"type": "cart_exploded", "shopper": "pipe:x"},
    ]
    effects = driver.window((3, None, [*ticks(T0 + HOUR), *junk, gone]))
    dead = to(effects, DEAD_LETTERS)
    assert [out.record["reason"] for out in dead] == [
        "event: expected a JSON object",
        "now: expected epoch seconds",
        "shopper: missing store:shopper key",
        "type: unknown shopper event type 'cart_exploded'",
    ]
    assert [out.record["record"] for out in dead] == junk
    assert all(out.record["partition"] == 3 and out.key is None for out in dead)
    assert all(out.record["topic"] == "shopper-events" for out in dead)
    assert [r.reason for r in effects.refused] == [out.record["reason"] for out in dead]
    assert all(r.error is None and r.malformed for r in effects.refused)
    assert effects.records[-1].to == RECOVERIES and shopper in driver.table


def test_a_record_without_its_own_shopper_takes_the_message_key(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    del gone["shopper"]
    driver.window((0, shopper, [*ticks(T0 + HOUR), gone]))
    assert driver.table[shopper].pl is not None


def test_an_internal_error_is_dead_lettered_with_the_exception(policies):
    class Failing(Table):
        """A table whose read of one shopper fails (a call into the compiled core cannot be
        patched, the table the driver hands it can)."""

        def get(self, key: str, default: Any = None) -> Any:
            if key == "pipe:broken":
                raise RuntimeError("boom")
            return super().get(key, default)

    driver = Driver(policies, table=Failing())
    shopper, gone = abandoned(policies, "120", T0)
    broken = {**gone, "shopper": "pipe:broken"}
    effects = driver.window((0, None, [*ticks(T0 + HOUR), broken, gone]))
    (dead,) = to(effects, DEAD_LETTERS)
    assert dead.record["reason"] == "internal error: RuntimeError: boom"
    assert dead.record["record"] == broken
    (refused,) = effects.refused
    assert isinstance(refused.error, RuntimeError) and refused.partition == 0
    assert not refused.malformed
    assert driver.table[shopper].pl is not None


def test_an_undecodable_message_is_dead_lettered_in_order(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.stage.dead_letter(1, "{not json", "json: not a JSON message")
    effects = driver.window((1, shopper, [*ticks(T0 + HOUR), gone]))
    assert [out.to for out in effects.records] == [DEAD_LETTERS, RECOVERIES]
    assert effects.records[0].record == {
        "reason": "json: not a JSON message",
        "partition": 1,
        "record": "{not json",
        "topic": "shopper-events",
    }


def test_an_order_ends_the_plan_and_leaves_the_audience(policies):
    driver = Driver(policies)
    who = {"customer": "ann"}
    shopper, gone = abandoned(policies, "310", T0, **who)  # high band: email and ads at 1h
    driver.window((0, shopper, [*ticks(T0 + HOUR), gone]))
    sent = driver.window((0, None, ticks(T0 + 2 * HOUR)))
    assert [out.to for out in sent.records] == ["touches.email", "touches.ads"]

    bought = converted(policies, gone["checkout"], "310", T0 + 3 * HOUR, **who)
    assert bought["shopper"] == shopper
    held = driver.window((0, None, [bought]))  # ahead of the watermark
    assert held.records == [] and driver.table[shopper].q == [shopper_event(bought)]
    ended = driver.window((0, None, ticks(T0 + 4 * HOUR)))
    removal, recovery = ended.records
    assert removal.to == "touches.ads" and removal.key == shopper
    assert removal.record["template"] == "audience_remove"
    assert recovery.to == RECOVERIES and recovery.record["type"] == "recovery"
    assert driver.table[shopper].pl is None and driver.table[shopper].lp.why


def test_a_shopper_redaction_reaches_every_checkout_partition(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    erase = {"type": "shopper_redacted", "store": "pipe", "shopper": shopper,
             "occurred_at": stage_a.iso(T0 + 2 * HOUR)}  # fmt: skip
    effects = driver.window((0, None, [*ticks(T0 + 3 * HOUR), gone, erase]))
    out = to(effects, CART_EVENTS)
    *everywhere, redact = out
    assert redact.key == checkout_key("pipe", gone["checkout"]) and redact.partition is None
    assert redact.record["type"] == "checkout_redacted"
    assert [o.partition for o in everywhere] == list(range(PARTITIONS))
    assert all(o.key is None and o.record["type"] == "shopper_redacted" for o in everywhere)


def test_a_store_redaction_erases_its_shoppers_of_the_partition_only(policies):
    driver = Driver(policies)
    one, gone_one = abandoned(policies, "120", T0, customer="ann")
    two, gone_two = abandoned(policies, "130", T0, customer="bo")
    other, gone_other = abandoned(policies, "140", T0, store="elsewhere", customer="cy")
    driver.window((0, None, [*ticks(T0 + HOUR), gone_one]), (1, None, [gone_two]))
    assert set(driver.table) == {one, two}
    # one's write of this window is not in the table yet when the store is erased
    effects = driver.window(
        (0, None, [gone_other, {"type": "consent_changed", "shopper": one, "channel": "sms"},
                   {"type": "store_redacted", "store": "pipe"}]),
    )  # fmt: skip
    assert effects.erased == [(0, 1)]
    assert effects.writes[one] == (0, None)
    assert set(driver.table) == {two, other}


def test_one_write_per_shopper_per_window_read_back_within_it(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    sms_off = {"type": "consent_changed", "shopper": shopper, "channel": "sms", "granted": False,
               "occurred_at": stage_a.iso(T0 + HOUR + 60)}  # fmt: skip
    effects = driver.window((2, None, [*ticks(T0 + HOUR), gone]), (2, None, [sms_off]))
    (key,) = effects.writes
    partition, state = effects.writes[key]
    assert key == shopper and partition == 2 and state is not None
    # the consent change applied over the state of the window's first message
    assert state.ak[0][0] == gone["checkout"] and state.pr.sup == ["sms"]
    assert effects.refused == []


def test_a_due_failure_is_observed_and_the_other_shoppers_go_on(policies):
    def secret(store: str) -> bytes:
        if store == "broken":
            raise KeyError(store)
        return b"secret"

    driver = Driver(policies, secret)
    good, gone_good = abandoned(policies, "120", T0, customer="ann")
    bad, gone_bad = abandoned(policies, "130", T0, store="broken", customer="bo")
    driver.window((0, None, [*ticks(T0 + HOUR), gone_bad, gone_good]))
    effects = driver.window((0, None, ticks(T0 + 2 * HOUR)))
    (failure,) = effects.due_failures
    assert failure.key == bad and failure.partition == 0
    assert isinstance(failure.error, KeyError)
    assert [out.key for out in effects.records] == [good]
    # the first tick leaves the watermark where it was; the second fires both shoppers
    assert [fired.due for fired in effects.timers] == [[], [T0 + 2 * HOUR] * 2]
    assert effects.refused == []


def test_timers_are_rebuilt_from_the_table_after_a_revocation(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.window((1, shopper, [*ticks(T0 + HOUR), gone]))
    driver.stage.revoked()

    # the watermark is forgotten too: nothing fires until every source ticked again
    again = driver.window((1, None, ticks(T0 + 3 * HOUR, 0)))
    assert again.records == [] and again.rebuilt == [(1, 1)]
    fired = driver.window((1, None, ticks(T0 + 3 * HOUR, 1)))
    assert [out.to for out in fired.records] == ["touches.email"]


def test_an_unreadable_row_is_dead_lettered_at_the_rebuild_and_the_others_go_on(policies):
    """A row the state's schema does not take (a hand edit, a newer version's field): the
    timer rebuild reads every row, so it must not stop the partition. The row is reported
    once, with the field at fault, and kept as it is."""
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.window((1, shopper, [*ticks(T0 + HOUR), gone]))
    broken = {"pt": 1, "seq": 2, "pr": {"oc": "many"}}
    driver.table["pipe:broken"] = copy.deepcopy(broken)
    driver.stage.revoked()
    again = driver.window((1, None, ticks(T0 + 3 * HOUR)))
    assert [out.to for out in again.records] == [DEAD_LETTERS, "touches.email"]
    letter = again.records[0].record
    assert letter["reason"] == "stored state: pr.oc: expected int, got str"
    assert letter["key"] == "pipe:broken" and letter["record"] == broken
    assert letter["table"] == "shoppers" and letter["partition"] == 1
    assert [row.key for row in again.unreadable] == ["pipe:broken"] and again.refused == []
    assert again.rebuilt == [(1, 1)] and driver.table["pipe:broken"] == broken
    driver.stage.revoked()
    later = driver.window((1, None, ticks(T0 + 4 * HOUR)))
    assert not to(later, DEAD_LETTERS)  # reported once


def test_a_record_for_a_shopper_whose_row_cannot_be_read_is_refused_naming_it(policies):
    """Not an internal error: the record is dead-lettered with the row's field at fault, and
    the row stays as it is."""
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    broken = {"pt": 0, "seq": 2, "pr": {"oc": "many"}}
    driver.table[shopper] = copy.deepcopy(broken)
    effects = driver.window((0, None, [*ticks(T0 + HOUR), gone]))
    letters = [out.record for out in to(effects, DEAD_LETTERS) if "key" not in out.record]
    assert [letter["reason"] for letter in letters] == [
        "stored state: pr.oc: expected int, got str"
    ]
    assert letters[0]["record"] == gone
    assert [refused.error for refused in effects.refused] == [None]
    assert driver.table[shopper] == broken


def test_a_store_redaction_erases_an_unreadable_row_of_the_store(policies):
    driver = Driver(policies)
    driver.table["pipe:broken"] = {"pt": 0, "seq": 2, "pr": {"oc": "many"}}
    driver.table["pipe:elsewhere"] = {"pt": 1, "seq": 2, "pr": {"oc": "many"}}
    driver.table["other:broken"] = {"pt": 0, "seq": 2, "pr": {"oc": "many"}}
    first = driver.window((0, None, ticks(T0)))
    assert sorted(out.record["key"] for out in to(first, DEAD_LETTERS)) == sorted(driver.table)
    effects = driver.window((0, None, [{"type": "store_redacted", "store": "pipe"}]))
    assert effects.writes == {"pipe:broken": (0, None)} and effects.erased == [(0, 1)]
    assert set(driver.table) == {"pipe:elsewhere", "other:broken"}
    assert effects.records == []


def test_a_revocation_within_a_window_rebuilds_from_its_writes_too(policies):
    driver = Driver(policies)
    shopper, gone = abandoned(policies, "120", T0)
    driver.fold(1, shopper, [*ticks(T0 + HOUR), gone])
    driver.stage.revoked()
    assert shopper not in driver.table
    effects = driver.window((1, None, ticks(T0 + 3 * HOUR)))
    assert (1, 1) in effects.rebuilt
    assert [out.to for out in effects.records] == [RECOVERIES, "touches.email"]


def test_take_starts_afresh():
    driver = Driver(load_policy())
    driver.stage.dead_letter(0, "x", "json: bad")
    assert driver.stage.take()
    empty = driver.stage.take()
    assert not empty and empty.refused == [] and empty.records == []
