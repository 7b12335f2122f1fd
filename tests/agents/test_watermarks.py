"""Stage B's watermarks: the slowest stage-A partition's tick, per stage-B partition."""

from __future__ import annotations

from agents.shoppers import Watermarks


def tick(source: int, now: float, of: int = 2) -> dict[str, object]:
    return {"type": "tick", "src": source, "of": of, "now": now}


def test_no_watermark_until_every_stage_a_partition_has_ticked() -> None:
    marks = Watermarks()
    assert marks.advance(0, tick(0, 100.0)) is None
    assert marks.current(0) is None
    assert marks.advance(0, tick(1, 90.0)) == 90.0
    assert marks.advance(0, tick(1, 120.0)) == 100.0
    assert marks.current(1) is None  # each stage-B partition apart


def test_a_partition_given_back_starts_from_the_ticks_it_reads_again() -> None:
    marks = Watermarks()
    marks.advance(0, tick(0, 100.0))
    marks.advance(0, tick(1, 100.0))
    marks.forget_all()  # revoked; later given back from an offset before those ticks
    assert marks.current(0) is None
    assert marks.advance(0, tick(0, 50.0)) is None
    assert marks.advance(0, tick(1, 60.0)) == 50.0  # not 100: records before it come again
