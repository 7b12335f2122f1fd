"""What both stage agents share: their input taken in windows, and the table their stage reads.

An agent takes its input messages in windows (Faust ``take_events``): a window's offsets are
committed only after its records and table writes are acknowledged, so there is one ship per
window rather than per message, and one table write per key per window however
many of the window's records touched it. A window closes after WINDOW_MESSAGES messages or
WINDOW_SECONDS seconds.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT

from agents.output import Output
from recovery.stage_effects import State

WINDOW_MESSAGES = 1024
WINDOW_SECONDS = 0.05


class TableView:
    """A stage's table as its processor reads it (:class:`recovery.stage_effects.StateTable`):
    with the writes the output holds that have not reached the store yet."""

    def __init__(self, output: Output, table: Any) -> None:
        self._output = output
        self._table = table

    def get(self, key: str) -> State | None:
        state: State | None = self._output.get(self._table, key)
        return state

    def items(self) -> Iterator[tuple[str, State | None]]:
        return self._output.items(self._table)


def make_current(event: EventT) -> None:
    """Make ``event`` Faust's current event in this task. A window's events are handed over as
    a list, outside the stream's iteration, and a RocksDB table reads and writes the store of
    the current event's partition. The context variable is Faust's own (faust.streams has no
    public setter; Stream._set_current_event would also change the stream's attribute that
    take_events' buffering task reads)."""
    _current_event.set(weakref.ref(event))


class Window:
    """The events of the window being handled: the latest of each partition, to write that
    partition's states under."""

    def __init__(self) -> None:
        self._latest: dict[int, EventT] = {}

    def enter(self, event: EventT) -> int:
        """``event`` is handled now: Faust's current event, the latest of its partition."""
        partition: int = event.message.partition
        self._latest[partition] = event
        make_current(event)
        return partition

    async def write(
        self, output: Output, table: Any, writes: dict[str, tuple[int, State | None]]
    ) -> None:
        """The states of ``writes`` (None deletes), each under its partition's latest event."""
        if not writes:
            return
        was = faust.current_event()
        current = None
        for key, (partition, state) in writes.items():
            if partition != current and partition in self._latest:
                make_current(self._latest[partition])
                current = partition
            await output.put(table, partition, key, state)
        if was is not None:
            make_current(was)

    def close(self) -> None:
        self._latest.clear()
