"""The pipeline's time: tick records, and the watermark stage B keeps from them.

A tick carries ``now`` (epoch seconds). Stage A reads ticks from its input (wall clock or a
replay's event time) and forwards each one to every partition of ``shopper-events`` with
``src`` (its own partition) and ``of`` (how many stage-A partitions there are); a stage-B
partition's time is then the minimum of the latest tick of every stage-A partition.
"""

from __future__ import annotations

from typing import Any, TypeGuard


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
    if not _epoch(now):
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
    """Per stage-B partition: the latest tick of each stage-A partition, with the offset of the
    message that carried it; time is their min.

    The ticks are kept in the stage's table (:meth:`row`) because a partition is read again
    from its committed offset after a restart or a rebalance: a stage-A partition whose latest
    tick came before that offset never ticks there again once its input has ended (a replay),
    and the watermark would wait for it forever. Only the ticks of messages before the offset
    read from are taken back (:meth:`restore`); the others are read again in their place."""

    def __init__(self) -> None:
        self._ticks: dict[int, dict[int, tuple[float, int]]] = {}  # source -> (now, offset)
        self._of: dict[int, int] = {}
        self._marks: dict[int, float] = {}

    def advance(self, partition: int, record: dict[str, Any], offset: int) -> float | None:
        """The partition's watermark after ``record``, a tick read at ``offset``; None until
        every stage-A partition has ticked."""
        ticks = self._ticks.setdefault(partition, {})
        source = int(record.get("src", 0))
        now = float(record.get("now", 0.0))
        seen = ticks.get(source)
        # an equal tick keeps its first offset: the earlier, the likelier it is kept on restore
        if seen is None or now > seen[0]:
            ticks[source] = (now, offset)
        self._of[partition] = int(record.get("of", 1))
        return self._mark(partition)

    def _mark(self, partition: int) -> float | None:
        ticks = self._ticks.get(partition, {})
        if not ticks or len(ticks) < self._of.get(partition, 1):
            return None
        self._marks[partition] = min(now for now, _ in ticks.values())
        return self._marks[partition]

    def current(self, partition: int) -> float | None:
        """The partition's watermark: None until every stage-A partition has ticked."""
        return self._marks.get(partition)

    def row(self, partition: int) -> dict[str, Any] | None:
        """What :meth:`restore` takes back: the partition's ticks as JSON values."""
        ticks = self._ticks.get(partition)
        if not ticks:
            return None
        entries = [[source, now, offset] for source, (now, offset) in sorted(ticks.items())]
        return {"of": self._of.get(partition, 1), "ticks": entries}

    def restore(self, partition: int, row: Any, before: int) -> float | None:
        """Start ``partition`` from the ticks of ``row`` read before offset ``before`` (where
        it is read from again); its watermark if they come from every stage-A partition. A
        row that is not one :meth:`row` made is ignored: the partition then waits for ticks
        it reads, as with none kept."""
        self._ticks.pop(partition, None)
        self._marks.pop(partition, None)
        self._of.pop(partition, None)
        if not isinstance(row, dict) or not _whole(row.get("of")):
            return None
        entries = row.get("ticks")
        if not isinstance(entries, list):
            return None
        kept: dict[int, tuple[float, int]] = {}
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 3):
                return None
            source, now, offset = entry
            if not (_whole(source) and _whole(offset) and _epoch(now)):
                return None
            if offset < before:
                kept[source] = (float(now), offset)
        self._of[partition] = row["of"]
        if kept:
            self._ticks[partition] = kept
        return self._mark(partition)

    def forget_all(self) -> None:
        """Start again from the ticks read from now on (or restored). A worker given back a
        partition resumes from its committed offset, possibly before ticks it had read: a
        watermark kept from then would let touches fall due ahead of records it has yet to
        re-read (an order among them)."""
        self._ticks.clear()
        self._marks.clear()
        self._of.clear()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _epoch(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and TICK_MIN <= value <= TICK_MAX
    )
