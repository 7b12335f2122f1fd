"""What both stage agents share: their input taken in windows, and the table their stage reads.

An agent takes its input messages in windows from its topic's inbox (streams/inbox.py): a
window's offsets are committed only after its records and table writes are acknowledged, so
there is one ship per window rather than per message, and one table write per key per window
however many of the window's records touched it. A window closes after WINDOW_MESSAGES messages,
once its messages count WINDOW_BYTES (a message holds one record or a batch of a hundred: the
bytes keep a window of batches as short as one of single records), or after WINDOW_SECONDS.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT, Message

from agents.output import Output
from recovery.stage_effects import State

WINDOW_MESSAGES = 4096
WINDOW_BYTES = 4 * 1024 * 1024
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
    """Make ``event`` Faust's current event in this task: a RocksDB table reads and writes the
    store of the current event's partition, and an agent reads no Faust stream. The context
    variable is Faust's own (faust.streams has no public setter)."""
    _current_event.set(weakref.ref(event))


class Window:
    """The partitions of the window being handled, each with an event to read and write its
    states under."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._latest: dict[int, EventT] = {}
        self._current: int | None = None

    def enter(self, message: Message) -> int:
        """``message`` is handled now: an event of its partition is Faust's current event."""
        partition: int = message.partition
        if partition != self._current:
            event = self._latest.get(partition)
            if event is None:
                event = self._app.create_event(message.key, None, message.headers, message)
                self._latest[partition] = event
            make_current(event)
            self._current = partition
        return partition

    async def write(
        self, output: Output, table: Any, writes: dict[str, tuple[int, State | None]]
    ) -> None:
        """The states of ``writes`` (None deletes), each under its partition's latest event."""
        if not writes:
            return
        latest = self._latest
        current = faust.current_event()
        await output.put_all(
            table,
            [
                (partition, key, state, latest.get(partition, current))
                for key, (partition, state) in writes.items()
            ],
        )

    def close(self) -> None:
        self._latest.clear()
        self._current = None
