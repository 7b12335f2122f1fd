"""A tick is a clock only if its fields can be one: a record that is not is refused by name."""

from __future__ import annotations

import pytest

from agents.messages import BadTick, tick, tick_time


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
