"""The timer index (recovery.timer_index): what fires, in which order, and how many entries it
keeps while states change faster than they fall due."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.timer_index import TimerIndex

P = 0


class States:
    """The durable truth the index is derived from: each key's (due, seq)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[float | None, int]] = {}

    def write(self, index: TimerIndex, key: str, due: float | None) -> None:
        seq = self.rows.get(key, (None, 0))[1] + 1
        self.rows[key] = (due, seq)
        index.schedule(P, due, seq, key)

    def delete(self, key: str) -> None:
        self.rows.pop(key, None)

    def current(self, key: str) -> tuple[float | None, int] | None:
        return self.rows.get(key)

    def due_by(self, now: float) -> list[tuple[float, str]]:
        """What a tick at ``now`` must fire: every key due by then, by (due, seq, key)."""
        rows = self.rows.items()
        found = sorted((d, seq, key) for key, (d, seq) in rows if d is not None and d <= now)
        return [(d, key) for d, _seq, key in found]


def test_a_deadline_pushed_later_keeps_one_entry() -> None:
    index, states = TimerIndex(), States()
    for minute in range(50):
        states.write(index, "s:c1", 3600.0 + 60 * minute)
    assert index.pending(P) == 1
    assert index.pop_due(P, 3600.0, states.current) == []  # its deadline moved on
    assert index.pending(P) == 1  # queued again at the newest deadline
    assert index.pop_due(P, 3600.0 + 60 * 49, states.current) == [(3600.0 + 60 * 49, "s:c1")]
    assert index.pending(P) == 0


def test_an_earlier_due_is_queued_before_the_later_entry() -> None:
    index, states = TimerIndex(), States()
    states.write(index, "s:a", 500.0)
    states.write(index, "s:a", 100.0)
    assert index.pop_due(P, 100.0, states.current) == [(100.0, "s:a")]
    states.write(index, "s:a", 700.0)
    assert index.pop_due(P, 600.0, states.current) == []  # the first entry, at 500, is stale
    assert index.pop_due(P, 700.0, states.current) == [(700.0, "s:a")]


def test_gone_or_idle_entities_are_dropped() -> None:
    index, states = TimerIndex(), States()
    states.write(index, "s:gone", 10.0)
    states.write(index, "s:idle", 10.0)
    states.delete("s:gone")
    states.rows["s:idle"] = (None, 9)
    assert index.pop_due(P, 50.0, states.current) == []
    assert index.pending(P) == 0


def test_rebuild_takes_the_table_and_fires_in_order() -> None:
    index, states = TimerIndex(), States()
    states.rows = {"s:b": (20.0, 3), "s:a": (20.0, 1), "s:c": (5.0, 7), "s:d": (99.0, 1)}
    index.rebuild(P, [(due, seq, key) for key, (due, seq) in states.rows.items() if due])
    assert index.pop_due(P, 20.0, states.current) == [(5.0, "s:c"), (20.0, "s:a"), (20.0, "s:b")]
    states.write(index, "s:d", 150.0)  # later than its entry from the table: not pushed again
    assert index.pending(P) == 1
    assert index.pop_due(P, 150.0, states.current) == [(150.0, "s:d")]


def test_partitions_are_apart_and_forgotten_together() -> None:
    index, states = TimerIndex(), States()
    states.write(index, "s:a", 10.0)
    index.schedule(1, 10.0, 1, "s:b")
    assert index.pending() == 2
    assert index.pop_due(1, 10.0, lambda key: (10.0, 1)) == [(10.0, "s:b")]
    index.forget_all()
    assert not index.built(P) and index.pending() == 0


operation = st.one_of(
    st.tuples(st.just("write"), st.sampled_from("abcdef"), st.none() | st.integers(0, 60)),
    st.tuples(st.just("delete"), st.sampled_from("abcdef"), st.none()),
    st.tuples(st.just("tick"), st.just(""), st.integers(0, 60)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=80))
def test_fires_exactly_what_is_due_in_due_order(ops: list[tuple[str, str, int | None]]) -> None:
    """Whatever the writes, deletes and ticks: a tick fires every entity due by then, once, in
    (due, seq, key) order."""
    index, states = TimerIndex(), States()
    index.rebuild(P, [])
    for kind, key, value in ops:
        if kind == "write":
            states.write(index, f"s:{key}", None if value is None else float(value))
        elif kind == "delete":
            states.delete(f"s:{key}")
        else:
            assert value is not None
            expected = states.due_by(float(value))
            assert index.pop_due(P, float(value), states.current) == expected
            for _due, fired in expected:  # the caller writes what it decided
                states.write(index, fired, None)
