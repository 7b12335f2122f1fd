"""bus.cursor: each offset folded once, in order, never past a hole, whatever the consumer
hands over (repeats, messages fetched before a seek, drops)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bus.cursor import InputCursor, Verdict


def test_a_partition_is_folded_from_where_it_was_started() -> None:
    cursor = InputCursor()
    assert cursor.admit(0, 5) is Verdict.UNSTARTED
    cursor.start(0, 5)
    assert [cursor.admit(0, offset) for offset in (5, 6, 6, 4, 8, 7, 8)] == [
        Verdict.FOLD,
        Verdict.FOLD,
        Verdict.REPEAT,
        Verdict.REPEAT,
        Verdict.AHEAD,
        Verdict.FOLD,
        Verdict.FOLD,
    ]
    assert cursor.expected(0) == 9
    assert cursor.admit(1, 0) is Verdict.UNSTARTED  # partitions are apart


def test_revoked_partitions_start_again() -> None:
    cursor = InputCursor()
    cursor.start(0, 0)
    cursor.admit(0, 0)
    cursor.forget()
    assert not cursor.started(0)
    assert cursor.admit(0, 1) is Verdict.UNSTARTED


def test_a_negative_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="partition 3: offset -1"):
        InputCursor().start(3, -1)


@given(st.integers(0, 50), st.lists(st.integers(0, 80), max_size=200))
def test_what_is_folded_is_every_offset_from_the_start_in_order(
    start: int, offered: list[int]
) -> None:
    cursor = InputCursor()
    cursor.start(0, start)
    folded = [offset for offset in offered if cursor.admit(0, offset) is Verdict.FOLD]
    assert folded == list(range(start, start + len(folded)))
    assert cursor.expected(0) == start + len(folded)


class FaultySource:
    """A partition of ``length`` messages read like Faust does at a restart: first ``early``
    messages fetched before the seek, then from ``committed``, with a stale message left over
    from the early fetch slipped in after the seek, which makes the read-offset filter drop
    what lies below it. A seek sets the position and the filter, as ``Consumer.seek`` does."""

    def __init__(self, length: int, committed: int, early: int, stale: int) -> None:
        self.length = length
        self.position = committed
        self.read_offset: int | None = None
        self.pending = list(range(committed, min(length, committed + early)))
        self.stale = stale

    def seek(self, offset: int) -> None:
        self.position = offset
        self.read_offset = offset
        self.pending = []

    def next(self) -> int | None:
        if self.pending:
            offset = self.pending.pop(0)
            self.position = offset + 1
        elif self.stale >= 0:
            offset, self.stale = self.stale, -1
        elif self.position < self.length:
            offset = self.position
            self.position += 1
        else:
            return None
        if self.read_offset is not None and offset < self.read_offset:
            return self.next()  # dropped by the filter
        self.read_offset = offset
        return offset


@given(
    st.integers(1, 60),
    st.data(),
)
def test_a_driver_that_reads_again_on_ahead_folds_the_whole_partition(
    length: int, data: st.DataObject
) -> None:
    committed = data.draw(st.integers(0, length - 1))
    early = data.draw(st.integers(0, length))
    stale = data.draw(st.integers(-1, length - 1))
    source = FaultySource(length, committed, early, stale)
    cursor = InputCursor()
    folded: list[int] = []
    seeked = False
    for _ in range(10 * length + 10):
        offset = source.next()
        if offset is None:
            break
        verdict = cursor.admit(0, offset)
        if verdict is Verdict.UNSTARTED:
            cursor.start(0, committed)
            if not seeked:
                source.seek(committed)  # the driver's start: the committed offset, read again
                seeked = True
            verdict = cursor.admit(0, offset)
        if verdict is Verdict.FOLD:
            folded.append(offset)
        elif verdict is Verdict.AHEAD:
            source.seek(cursor.expected(0))
    assert folded == list(range(committed, length))
