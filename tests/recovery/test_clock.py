"""The pipeline's clock: tick records are checked by field; stage A's clocks never go back;
stage B's watermark is the slowest stage-A partition's tick, per stage-B partition."""

from __future__ import annotations

import pytest

from recovery.clock import BadTick, PartitionClocks, Watermarks, tick, tick_time


def test_the_ticks_we_send_are_taken() -> None:
    assert tick_time(tick(1_793_635_200.5)) == 1_793_635_200.5
    assert tick_time(tick(1_793_635_200, source=3, of=8)) == 1_793_635_200.0


@pytest.mark.parametrize(
    ("record", "field"),
    [({"now": "soon"}, "now"), ({"now": True}, "now"), ({"now": 1e300}, "now"),
     ({"now": -1}, "now"), ({}, "now"), ({"now": 1.0, "src": "a"}, "src"),
     ({"now": 1.0, "src": 0, "of": 2.5}, "of")],
)  # fmt: skip
def test_a_tick_that_cannot_be_a_clock_is_refused(record: dict, field: str) -> None:
    with pytest.raises(BadTick, match=rf"^{field}: "):
        tick_time({"type": "tick", **record})


def test_a_partition_clock_never_goes_back_until_the_partition_is_given_back() -> None:
    clocks = PartitionClocks()
    assert clocks.advance(0, 100.0) == 100.0
    assert clocks.advance(0, 90.0) == 100.0
    assert clocks.advance(1, 50.0) == 50.0
    clocks.forget_all()
    assert clocks.advance(0, 90.0) == 90.0


def forwarded(source: int, now: float, of: int = 2) -> dict[str, object]:
    return {"type": "tick", "src": source, "of": of, "now": now}


def test_no_watermark_until_every_stage_a_partition_has_ticked() -> None:
    marks = Watermarks()
    assert marks.advance(0, forwarded(0, 100.0), 0) is None
    assert marks.current(0) is None
    assert marks.advance(0, forwarded(1, 90.0), 1) == 90.0
    assert marks.advance(0, forwarded(1, 120.0), 2) == 100.0
    assert marks.current(1) is None  # each stage-B partition apart


def test_a_partition_given_back_starts_from_the_ticks_it_reads_again() -> None:
    marks = Watermarks()
    marks.advance(0, forwarded(0, 100.0), 0)
    marks.advance(0, forwarded(1, 100.0), 1)
    marks.forget_all()  # revoked; later given back from an offset before those ticks
    assert marks.current(0) is None
    assert marks.advance(0, forwarded(0, 50.0), 0) is None
    assert marks.advance(0, forwarded(1, 60.0), 1) == 50.0  # not 100: records before it come again


def test_a_row_keeps_each_source_s_latest_tick_at_the_first_offset_that_carried_it() -> None:
    marks = Watermarks()
    assert marks.row(0) is None
    marks.advance(0, forwarded(0, 100.0), 3)
    marks.advance(0, forwarded(0, 100.0), 4)  # the same tick again
    marks.advance(0, forwarded(0, 90.0), 5)  # an older one
    marks.advance(0, forwarded(1, 80.0), 6)
    assert marks.row(0) == {"of": 2, "ticks": [[0, 100.0, 3], [1, 80.0, 6]]}


def test_restore_takes_back_the_ticks_before_the_offset_read_from() -> None:
    row = {"of": 2, "ticks": [[0, 100.0, 3], [1, 80.0, 6]]}
    marks = Watermarks()
    assert marks.restore(0, row, 7) == 80.0 and marks.current(0) == 80.0
    assert marks.restore(0, row, 6) is None and marks.current(0) is None  # 1's comes again
    assert marks.row(0) == {"of": 2, "ticks": [[0, 100.0, 3]]}
    assert marks.advance(0, forwarded(1, 80.0), 6) == 80.0
    assert marks.restore(0, row, 3) is None and marks.row(0) is None


@pytest.mark.parametrize(
    "row",
    [
        None,
        [],
        {"ticks": [[0, 100.0, 3]]},
        {"of": True, "ticks": [[0, 100.0, 3]]},
        {"of": 1, "ticks": {"0": 100.0}},
        {"of": 1, "ticks": [[0, 100.0]]},
        {"of": 1, "ticks": [[0, "100", 3]]},
        {"of": 1, "ticks": [[0, -5.0, 3]]},
        {"of": 1, "ticks": [[-1, 100.0, 3]]},
        {"of": 1, "ticks": [[0, 100.0, 2.5]]},
    ],
)
def test_a_row_restore_cannot_read_starts_the_partition_with_no_ticks(row: object) -> None:
    marks = Watermarks()
    marks.advance(0, forwarded(0, 50.0, of=1), 0)
    assert marks.restore(0, row, 10) is None
    assert marks.current(0) is None and marks.row(0) is None
