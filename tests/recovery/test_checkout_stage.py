"""Stage A's processor without a broker: records in, a window's effects out, over a dict table."""

from __future__ import annotations

from typing import Any

from bench.events import Mix, generate
from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery.checkout_stage import CheckoutEffects, CheckoutStage
from recovery.clock import tick
from recovery.policy import StorePolicy
from recovery.policyset import PolicySet
from recovery.simulate import boundaries, drain_ticks, simulate
from recovery.stage_effects import DEAD_LETTERS, SHOPPER_EVENTS, Outgoing, State
from tests.pipeline.helpers import T0, cart, wire

POLICIES = load_policy()
HOUR = 3600.0
PARTITIONS = 3


def stage(table: dict[str, State] | None = None) -> CheckoutStage:
    return CheckoutStage(POLICIES, PARTITIONS, {} if table is None else table)


def store(table: dict[str, State], effects: CheckoutEffects) -> None:
    """What the driver does with the window's writes."""
    for key, (_, state) in effects.writes.items():
        if state is None:
            table.pop(key, None)
        else:
            table[key] = state


def forwarded(now: float, source: int) -> list[Outgoing]:
    record = tick(now, source, PARTITIONS)
    return [Outgoing(SHOPPER_EVENTS, record, partition=p) for p in range(PARTITIONS)]


def kinds(effects: CheckoutEffects) -> list[tuple[str, Any]]:
    """Each record as (role, its type), in order."""
    return [(out.to, wire(out.record).get("type")) for out in effects.records]


def test_a_tick_past_the_deadline_emits_the_abandonment_then_one_tick_per_partition() -> None:
    processor = stage()
    processor.fold(1, [cart("c1", "120"), tick(T0 + HOUR)])
    effects = processor.take()
    first, *ticks = effects.records
    assert first.to == SHOPPER_EVENTS and first.partition is None
    assert first.record.kind == "cart_abandoned"
    assert first.key == first.record.shopper and first.key.startswith("pipe:")
    assert ticks == forwarded(T0 + HOUR, 1)
    (timers,) = effects.timers
    assert (timers.stage, timers.now, timers.due, timers.pending) == (
        "carts",
        T0 + HOUR,
        [T0 + HOUR],
        1,
    )
    ((partition, state),) = effects.writes.values()
    assert partition == 1 and state is not None and state.st == "abandoned"


def test_a_ticks_records_precede_its_forwarded_tick_and_follow_the_earlier_ones() -> None:
    processor = stage()
    processor.fold(0, [cart("c1", "120"), cart("c2", "80", T0 + 60)])
    processor.fold(0, [tick(T0 + HOUR)])  # c1 only
    processor.fold(0, [tick(T0 + HOUR + 60)])  # c2
    effects = processor.take()
    records = effects.records
    assert kinds(effects) == [
        (SHOPPER_EVENTS, "cart_abandoned"),
        *[(SHOPPER_EVENTS, "tick")] * PARTITIONS,
        (SHOPPER_EVENTS, "cart_abandoned"),
        *[(SHOPPER_EVENTS, "tick")] * PARTITIONS,
    ]
    assert records[0].record.checkout == "c1" and records[4].record.checkout == "c2"
    assert records[1:4] == forwarded(T0 + HOUR, 0)
    assert records[5:] == forwarded(T0 + HOUR + 60, 0)


def test_a_tick_before_the_deadline_only_forwards_itself() -> None:
    processor = stage()
    processor.fold(2, [cart("c1", "120"), tick(T0 + HOUR - 1)])
    assert processor.take().records == forwarded(T0 + HOUR - 1, 2)


def test_a_partitions_clock_never_goes_back() -> None:
    processor = stage()
    processor.fold(0, [tick(T0 + 100), tick(T0 + 50)])
    assert [t.now for t in processor.take().timers] == [T0 + 100, T0 + 100]


def test_a_bad_event_is_dead_lettered_and_the_next_one_applied() -> None:
    processor = stage()
    bad = {**cart("c1", "120"), "total": "lots"}
    processor.fold(1, [bad, cart("c2", "80")])
    effects = processor.take()
    (letter,) = effects.records
    assert letter.to == DEAD_LETTERS
    assert letter.record["partition"] == 1 and letter.record["record"] is bad
    assert letter.record["reason"].startswith("total:")
    (refused,) = effects.refused
    assert refused.malformed and refused.reason == letter.record["reason"]
    assert list(effects.writes) == ["pipe:c2"]
    assert effects.events_read == {("generic", "cart_updated"): 2}


class Broken(PolicySet):
    """A policy lookup that fails: a bug of ours, met while folding an event."""

    def for_store(self, store: str) -> StorePolicy:
        raise KeyError("x")


def test_a_bug_is_an_internal_error_dead_letter_not_an_exception() -> None:
    processor = CheckoutStage(Broken("broken", POLICIES.defaults), PARTITIONS, {})
    processor.fold(0, [cart("c1", "120")])
    effects = processor.take()
    (letter,) = effects.records
    assert letter.record["reason"] == "internal error: KeyError: 'x'"
    (refused,) = effects.refused
    assert not refused.malformed and isinstance(refused.error, KeyError)
    assert not effects.writes


def test_a_bad_tick_is_dead_lettered_and_forwards_nothing() -> None:
    processor = stage()
    processor.fold(0, [{"type": "tick", "now": "soon"}])
    effects = processor.take()
    assert kinds(effects) == [(DEAD_LETTERS, None)]
    assert effects.records[0].record["reason"].startswith("now:")
    assert not effects.timers


def test_an_undecodable_message_is_dead_lettered_in_the_windows_order() -> None:
    processor = stage()
    processor.fold(0, [{"type": "tick", "now": "soon"}])
    processor.refuse(0, "{not json", "json: not a JSON message")
    processor.fold(0, [{"type": "tick", "now": -1}])
    letters = [out.record["record"] for out in processor.take().records]
    assert letters == [{"type": "tick", "now": "soon"}, "{not json", {"type": "tick", "now": -1}]


def test_an_erasure_removes_a_checkout_only_pending_in_the_window() -> None:
    table: dict[str, State] = {}
    processor = stage(table)
    processor.fold(0, [cart("c1", "120"), cart("c2", "80", store="other")])
    processor.fold(0, [{"type": "store_redacted", "store": "pipe"}])
    effects = processor.take()
    assert effects.writes["pipe:c1"] == (0, None)
    assert effects.writes["other:c2"][1] is not None
    assert [(e.kind, e.partition, e.count) for e in effects.erased] == [("store_redacted", 0, 1)]
    store(table, effects)
    processor.fold(0, [tick(T0 + HOUR)])  # no abandonment for the erased checkout
    abandoned, *ticks = processor.take().records
    assert abandoned.record.checkout == "c2" and ticks == forwarded(T0 + HOUR, 0)


def test_an_erasure_removes_stored_checkouts_of_its_partition_only() -> None:
    table: dict[str, State] = {}
    processor = stage(table)
    processor.fold(0, [cart("c1", "120")])
    processor.fold(1, [cart("c2", "80")])
    store(table, processor.take())
    shopper = table["pipe:c1"].sh
    redaction = {"type": "shopper_redacted", "store": "pipe", "shopper": shopper,
                 "occurred_at": "2026-11-03T00:00:00Z"}  # fmt: skip
    processor.fold(0, [redaction])
    effects = processor.take()
    assert effects.writes == {"pipe:c1": (0, None)}
    store(table, effects)
    assert list(table) == ["pipe:c2"]


def test_checkout_redacted_erases_one_checkout_updated_before_it() -> None:
    processor = stage()
    processor.fold(0, [cart("c1", "120"), cart("c2", "80", T0 + 600)])
    redacted = stage_a.checkout_redaction("pipe", "c1", T0 + 300)
    kept = stage_a.checkout_redaction("pipe", "c2", T0 + 300)  # c2 changed after it
    processor.fold(0, [redacted, kept])
    writes = processor.take().writes
    assert writes["pipe:c1"] == (0, None) and writes["pipe:c2"][1] is not None


def test_an_unreadable_row_is_dead_lettered_at_the_rebuild_and_the_others_go_on() -> None:
    """A row the state's schema does not take must not stop the partition at the timer
    rebuild: it is reported once, with the field at fault, and kept as it is."""
    table: dict[str, State] = {}
    processor = stage(table)
    processor.fold(0, [cart("c1", "120"), cart("c2", "80", T0 + 60)])
    store(table, processor.take())
    broken = {"pt": 0, "seq": "one", "st": "open"}
    table["pipe:broken"] = dict(broken)
    processor = stage(table)
    processor.fold(0, [tick(T0 + 2 * HOUR)])
    effects = processor.take()
    (letter,) = [out.record for out in effects.records if out.to == DEAD_LETTERS]
    assert letter == {"reason": "stored state: seq: expected int, got str", "partition": 0,
                      "key": "pipe:broken", "record": broken, "table": "checkouts"}  # fmt: skip
    assert [row.key for row in effects.unreadable] == ["pipe:broken"] and effects.refused == []
    assert kinds(effects)[1:3] == [(SHOPPER_EVENTS, "cart_abandoned")] * 2
    assert "pipe:broken" not in effects.writes and table["pipe:broken"] == broken
    processor.revoked()
    processor.fold(0, [tick(T0 + 3 * HOUR)])
    assert not [out for out in processor.take().records if out.to == DEAD_LETTERS]


def test_an_event_for_a_checkout_whose_row_cannot_be_read_is_refused_naming_it() -> None:
    """Not an internal error: the event is dead-lettered with the row's field at fault, and
    the row stays as it is; the next event of another checkout is folded."""
    broken = {"pt": 0, "seq": "one"}
    table: dict[str, State] = {"pipe:c1": dict(broken)}
    processor = stage(table)
    event = cart("c1", "120")
    processor.fold(0, [event, cart("c2", "80")])
    effects = processor.take()
    letters = [out.record for out in effects.records if out.to == DEAD_LETTERS]
    reasons = [letter["reason"] for letter in letters if "key" not in letter]
    assert reasons == ["stored state: seq: expected int, got str"]
    assert [refused.error for refused in effects.refused] == [None]
    assert list(effects.writes) == ["pipe:c2"] and table["pipe:c1"] == broken


def test_a_redaction_erases_an_unreadable_row_it_names() -> None:
    """A store's redaction erases the store's rows of the partition by their key and the
    partition they name; a checkout's redaction erases that checkout."""
    broken = {"pt": 0, "seq": "one"}
    table: dict[str, State] = {
        "pipe:a": dict(broken), "pipe:b": {**broken, "pt": 1}, "other:c": dict(broken),
        "other:d": dict(broken),
    }  # fmt: skip
    processor = stage(table)
    processor.fold(0, [{"type": "store_redacted", "store": "pipe"}])
    processor.fold(0, [stage_a.checkout_redaction("other", "d", T0)])
    effects = processor.take()
    assert effects.writes == {"pipe:a": (0, None), "other:d": (0, None)}


def test_a_shopper_redaction_erases_an_unreadable_row_that_names_the_shopper() -> None:
    """Whatever times the row holds: they cannot be read as a state's, and an erasure request
    errs on the side of erasing. A row naming another shopper, of another store or of another
    partition stays."""
    broken = {"pt": 0, "seq": "one", "sh": "ann", "u": T0 + 10 * HOUR}
    table: dict[str, State] = {
        "pipe:a": dict(broken), "pipe:b": {**broken, "sh": "bo"}, "pipe:c": {**broken, "pt": 1},
        "other:d": dict(broken), "pipe:e": {"pt": 0, "seq": "one"}, "None:f": dict(broken),
    }  # fmt: skip
    processor = stage(table)
    redaction = {"type": "shopper_redacted", "store": "pipe", "shopper": "ann",
                 "occurred_at": "2026-11-03T00:00:00Z"}  # fmt: skip
    processor.fold(0, [redaction, {**redaction, "store": None}])
    assert processor.take().writes == {"pipe:a": (0, None)}


def test_writes_are_one_per_key_per_window_with_the_latest_state() -> None:
    processor = stage()
    processor.fold(0, [cart("c1", "120"), cart("c2", "80")])
    processor.fold(0, [cart("c1", "130", T0 + 60), tick(T0 + 2 * HOUR)])
    assert processor.pending == 2
    effects = processor.take()
    assert list(effects.writes) == ["pipe:c1", "pipe:c2"]
    state = effects.writes["pipe:c1"][1]
    assert state is not None and state.st == "abandoned" and state.c.total == "130"
    assert processor.pending == 0
    assert not processor.take()  # the next window starts empty


def test_after_revoked_the_index_is_rebuilt_from_the_table_and_fires_the_same_timers() -> None:
    table: dict[str, State] = {}
    processor = stage(table)
    processor.fold(0, [cart("c1", "120"), cart("c2", "80", T0 + 60)])
    processor.fold(1, [cart("c3", "50")])
    store(table, processor.take())

    def fire(processor: CheckoutStage) -> list[Outgoing]:
        processor.fold(0, [tick(T0 + 2 * HOUR)])
        return processor.take().records

    fresh = stage(dict(table))
    processor.revoked()
    again = fire(processor)
    assert [wire(out.record).get("checkout") for out in again[:2]] == ["c1", "c2"]
    assert again == fire(fresh)
    # one pass over the table indexes every partition it holds
    fresh = stage(dict(table))
    fresh.fold(0, [])
    assert fresh.take().rebuilt == [(0, 2), (1, 1)]


def test_after_revoked_the_timers_are_those_of_the_table_not_of_the_old_index() -> None:
    table: dict[str, State] = {}
    processor = stage(table)
    processor.fold(0, [cart("c1", "120")])
    store(table, processor.take())
    # meanwhile the partition's next owner folded a later update, and it comes back
    elsewhere = stage(dict(table))
    elsewhere.fold(0, [cart("c1", "120", T0 + HOUR / 2)])
    store(table, elsewhere.take())
    processor.revoked()
    processor.fold(0, [tick(T0 + HOUR)])
    assert kinds(processor.take()) == [(SHOPPER_EVENTS, "tick")] * PARTITIONS
    processor.fold(0, [tick(T0 + 1.5 * HOUR)])
    assert kinds(processor.take())[0] == (SHOPPER_EVENTS, "cart_abandoned")


def test_after_revoked_a_clock_starts_again_from_the_ticks_read() -> None:
    processor = stage()
    processor.fold(0, [tick(T0 + 100)])
    processor.revoked()
    processor.fold(0, [tick(T0 + 50)])
    assert [t.now for t in processor.take().timers] == [T0 + 100, T0 + 50]


def test_the_index_is_rebuilt_from_states_still_pending_in_the_window() -> None:
    processor = stage()
    processor.fold(0, [cart("c1", "120")])
    processor.revoked()  # mid-window: c1 is in no table yet
    processor.fold(0, [tick(T0 + HOUR)])
    assert kinds(processor.take())[0] == (SHOPPER_EVENTS, "cart_abandoned")


def test_the_stage_keeps_the_same_checkouts_as_the_simulation() -> None:
    """A replay folded in windows of a few messages, with its ticks, ends with the checkouts
    (and the stage A effects) of :func:`recovery.simulate.simulate`."""
    events = generate(3000, 7, Mix(duplicate_rate=0.05))
    events[100:100] = [{**events[100], "total": "lots"}, {**events[100], "type": "refund"}]
    timed = [(stage_a.epoch(e["occurred_at"], "occurred_at"), e) for e in events]
    sim = simulate(timed, POLICIES, lambda store: b"secret")
    table: dict[str, State] = {}
    processor = CheckoutStage(POLICIES, 1, table)
    counts: dict[str, int] = {}
    rejected = []

    def window(records: list[Any]) -> None:
        for start in range(0, len(records), 7):  # messages of a few records
            processor.fold(0, records[start : start + 7])
        effects = processor.take()
        for effect in effects.cart_effects:
            counts[effect.kind] = counts.get(effect.kind, 0) + 1
        rejected.extend(r.record["reason"] for r in effects.records if r.to == DEAD_LETTERS)
        store(table, effects)

    watermark = timed[0][0]
    for tick_at, chunk in boundaries(timed, 300.0):
        if tick_at is not None:
            window([tick(tick_at)])
            watermark = tick_at
        window(chunk)
    for now in drain_ticks(watermark, timed[-1][0], 8 * 86400.0):
        window([tick(now)])
    assert table == sim.carts
    assert counts == sim.counts
    assert rejected == [reason for _, reason in sim.rejected] and len(rejected) == 2
    assert counts["abandoned"] and counts["duplicate"]
