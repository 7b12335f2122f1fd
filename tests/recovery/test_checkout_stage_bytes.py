"""Stage A fed a message's bytes read straight into typed events: the same effects as its
records decoded and folded one by one, and a refused record kept as it was sent."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from bench.events import Mix, generate
from recovery.checkout_stage import CheckoutEffects, CheckoutStage
from recovery.clock import tick
from recovery.stage_effects import DEAD_LETTERS, State
from schemas.batches import batch_message, records_of
from schemas.cart_events import batch_records, cart_events_in
from tests.pipeline.helpers import T0, cart
from tests.recovery.test_checkout_stage import PARTITIONS, POLICIES, Broken, store

HOUR = 3600.0
HUGE = "a JSON integer beyond 64 bits"


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record).replace(b'"%s"' % HUGE.encode(), b"123456789012345678901234")


def records_in(payload: bytes) -> list[Any]:
    """A message's records, as the agent decodes them (agents.messages, not imported here: the
    core's tests run against the compiled core without the agents)."""
    return records_of(orjson.loads(payload))


def typed(processor: CheckoutStage, partition: int, payload: bytes) -> str:
    """What stage A's agent does with a message: typed whole when it can, a batch one record
    at a time, else as records; which read took it."""
    events = cart_events_in(payload)
    if events is not None and processor.fold_events(partition, events, lambda: records_in(payload)):
        return "typed"
    raws = batch_records(payload)
    if raws is not None:
        processor.fold_raw(partition, raws)
        return "each"
    processor.fold(partition, records_in(payload))
    return "records"


def by_records(processor: CheckoutStage, partition: int, payload: bytes) -> str:
    processor.fold(partition, records_in(payload))
    return "records"


def run(
    fold: Any, messages: list[bytes]
) -> tuple[list[CheckoutEffects], dict[str, Any], Counter[str]]:
    """Each window of ten messages on partition 0, a tick of an hour after each; the effects,
    the table as JSON and how many messages each read took."""
    processor = CheckoutStage(POLICIES, PARTITIONS, table := {})
    windows: list[CheckoutEffects] = []
    taken: Counter[str] = Counter()
    at = T0
    for start in range(0, len(messages), 10):
        for payload in messages[start : start + 10]:
            taken[fold(processor, 0, payload)] += 1
        at += HOUR
        processor.fold(0, [tick(at)])
        effects = processor.take()
        store(table, effects)
        windows.append(effects)
    return windows, orjson.loads(orjson.dumps(table, default=_state)), taken


def _state(value: State) -> Any:
    return orjson.loads(orjson.dumps(value.__json__()))  # type: ignore[union-attr]


def same(left: list[CheckoutEffects], right: list[CheckoutEffects]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert [(o.to, o.key, o.partition, o.record) for o in a.records] == [
            (o.to, o.key, o.partition, o.record) for o in b.records
        ]
        assert a.events_read == b.events_read
        assert a.cart_effects == b.cart_effects
        assert [(r.partition, r.reason) for r in a.refused] == [
            (r.partition, r.reason) for r in b.refused
        ]
        assert {k: (p, _state(s) if s else s) for k, (p, s) in a.writes.items()} == {
            k: (p, _state(s) if s else s) for k, (p, s) in b.writes.items()
        }


def poisoned(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every 37th event made bad in one of the ways a sender gets wrong, a tick after every
    53rd."""
    out: list[dict[str, Any]] = []
    faults = [
        {"total": "lots"},
        {"store": ""},
        {"total": 12.5},
        {"line_items": [{"price": "1", "quantity": True}]},
        {"occurred_at": "yesterday"},
        {"order_id": HUGE},
        {"platform": None},
        {"type": "cart_exploded"},
    ]
    for n, event in enumerate(events):
        if n % 37 == 5:
            event = {**event, **faults[(n // 37) % len(faults)], "unknown": [n]}
        out.append(event)
        if n % 53 == 7:
            out.append(tick(T0 + n))
    return out


@pytest.mark.parametrize("per_message", [1, 7, 100])
def test_typed_messages_fold_as_their_records_do(per_message: int) -> None:
    generated = generate(1500, seed=11, mix=Mix(stores=5, duplicate_rate=0.05))
    events = poisoned(generated[:700]) + generated[700:]  # messages of both kinds
    encoded = [encode(event) for event in events]
    if per_message == 1:
        messages = encoded
    else:
        messages = [
            batch_message(encoded[n : n + per_message]) for n in range(0, len(encoded), per_message)
        ]
    expected, table, _ = run(by_records, messages)
    got, typed_table, taken = run(typed, messages)
    same(got, expected)
    assert typed_table == table
    assert any(effects.refused for effects in got)
    # every read took its share: batches mix ticks and bad records in the first part
    assert taken["typed"] > 0 and taken["each" if per_message > 1 else "records"] > 0


def test_a_json_array_of_cart_events_is_read_typed() -> None:
    payload = orjson.dumps([cart("c1", "120"), cart("c2", "80", at=T0 + 1)])
    processor = CheckoutStage(POLICIES, PARTITIONS, {})
    assert typed(processor, 2, payload) == "typed"
    assert sorted(processor.take().writes) == ["pipe:c1", "pipe:c2"]


def test_a_refused_event_in_a_batch_is_dead_lettered_as_it_was_sent() -> None:
    bad = {**cart("c1", "120"), "store": "", "extra": {"kept": True}}
    payload = batch_message([orjson.dumps(cart("c0", "50")), orjson.dumps(bad)])
    processor = CheckoutStage(POLICIES, PARTITIONS, {})
    assert typed(processor, 1, payload) == "each"
    effects = processor.take()
    (letter,) = [out.record for out in effects.records if out.to == DEAD_LETTERS]
    assert letter == {"reason": "store: required non-empty string", "partition": 1, "record": bad}
    assert list(effects.writes) == ["pipe:c0"]


def test_a_bug_on_a_typed_event_dead_letters_the_record_as_sent() -> None:
    sent = {**cart("c1", "120"), "extra": {"kept": True}}
    processor = CheckoutStage(Broken("broken", POLICIES.defaults), PARTITIONS, {})
    assert typed(processor, 0, orjson.dumps(sent)) == "typed"
    effects = processor.take()
    (letter,) = effects.records
    assert letter.record == {
        "reason": "internal error: KeyError: 'x'",
        "partition": 0,
        "record": sent,
    }
    assert not effects.writes


def test_a_bug_on_an_event_of_a_mixed_batch_dead_letters_the_record_as_sent() -> None:
    sent = {**cart("c1", "120"), "extra": {"kept": True}}
    payload = batch_message([orjson.dumps(sent), orjson.dumps(tick(T0))])
    processor = CheckoutStage(Broken("broken", POLICIES.defaults), PARTITIONS, {})
    assert typed(processor, 0, payload) == "each"
    effects = processor.take()
    (letter,) = [out.record for out in effects.records if out.to == DEAD_LETTERS]
    assert letter == {"reason": "internal error: KeyError: 'x'", "partition": 0, "record": sent}
    assert [t.now for t in effects.timers] == [T0]


def test_a_batch_object_spelled_otherwise_is_still_a_batch() -> None:
    payload = b'{ "batch": [' + orjson.dumps(cart("c1", "120")) + b"]}"
    processor = CheckoutStage(POLICIES, PARTITIONS, {})
    assert typed(processor, 0, payload) == "records"
    effects = processor.take()
    assert list(effects.writes) == ["pipe:c1"] and not effects.refused
