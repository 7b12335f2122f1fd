"""The pipeline's time: tick records, and the watermark stage B keeps from them.

A tick carries ``now`` (epoch seconds). Stage A reads ticks from its input (wall clock or a
replay's event time) and forwards each one to every partition of ``shopper-events`` with
``src`` (its own partition) and ``of`` (how many stage-A partitions there are); a stage-B
partition's time is then the minimum of the latest tick of every stage-A partition.
"""

from __future__ import annotations

from typing import Any


class BadTick(ValueError):
    """A tick record whose fields cannot be a clock; the text names the field."""


# the times a tick may carry: what a datetime can hold (recovery.checkouts.epoch's range)
TICK_MIN = 0.0
TICK_MAX = 253402300799.0


def tick(now: float, source: int | None = None, of: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "tick", "now": now}
    if source is not None:
        record["src"] = source
        record["of"] = of
    return record


def tick_time(record: dict[str, Any]) -> float:
    """The time of a tick record, its fields checked: ``now`` epoch seconds, and ``src`` /
    ``of`` (which stage-A partition forwarded it, of how many) whole numbers if present."""
    now = record.get("now")
    if isinstance(now, bool) or not isinstance(now, int | float) or not TICK_MIN <= now <= TICK_MAX:
        raise BadTick("now: expected epoch seconds")
    for name in ("src", "of"):
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadTick(f"{name}: expected a partition number")
    return float(now)


class PartitionClocks:
    """Stage A's time per partition: the latest tick read, never going back."""

    def __init__(self) -> None:
        self._now: dict[int, float] = {}

    def advance(self, partition: int, now: float) -> float:
        now = max(now, self._now.get(partition, now))
        self._now[partition] = now
        return now

    def forget_all(self) -> None:
        """A partition given back resumes from its committed offset, possibly before ticks
        read here already: a clock kept from then would fire timers ahead of the records it
        has yet to read again (an order among them)."""
        self._now.clear()


class Watermarks:
    """Per stage-B partition: the latest tick of each stage-A partition; time is their min."""

    def __init__(self) -> None:
        self._ticks: dict[int, dict[int, float]] = {}
        self._marks: dict[int, float] = {}

    def advance(self, partition: int, record: dict[str, Any]) -> float | None:
        ticks = self._ticks.setdefault(partition, {})
        source = int(record.get("src", 0))
        now = float(record.get("now", 0.0))
        ticks[source] = max(now, ticks.get(source, now))
        if len(ticks) < int(record.get("of", 1)):
            return None
        self._marks[partition] = min(ticks.values())
        return self._marks[partition]

    def current(self, partition: int) -> float | None:
        """The partition's watermark: None until every stage-A partition has ticked."""
        return self._marks.get(partition)

    def forget_all(self) -> None:
        """Start again from the ticks read from now on. A worker given back a partition
        resumes from its committed offset, possibly before ticks it had read: a watermark
        kept from then would let touches fall due ahead of records it has yet to re-read (an
        order among them)."""
        self._ticks.clear()
        self._marks.clear()
