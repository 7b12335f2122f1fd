"""Where a consumer stands in each partition of one input topic: the offset it folds next.

Kafka keeps a partition in order and the pipeline's stages depend on it (an order folded after
a tick past its cart's deadline sends a reminder for a bought cart). A consumer library may
still hand a message over twice or out of turn around a rebalance or a seek: Faust delivers
what it fetched before its seek to the committed offsets, then the partition again from there,
and its read-offset filter can then drop messages. The cursor makes the driver fold each
offset once, in order, and never past a hole:

- ``FOLD``: the offset expected next; the cursor moves past it.
- ``REPEAT``: below the expected offset, folded already since the partition was started.
- ``AHEAD``: above it; a message in between has not been folded, so the driver must read the
  partition again from :meth:`InputCursor.expected` and skip this one.
- ``UNSTARTED``: the driver must first :meth:`InputCursor.start` the partition at its
  committed offset, the first offset nobody has folded for good.

No I/O and no clock: the driver owns the consumer.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    FOLD = "fold"
    REPEAT = "repeat"
    AHEAD = "ahead"
    UNSTARTED = "unstarted"


class InputCursor:
    """Per partition, the next offset to fold; a partition is unknown until started."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def start(self, partition: int, offset: int) -> None:
        """Fold ``partition`` from ``offset`` on (its committed offset, or its first offset
        when nothing was committed)."""
        if offset < 0:
            raise ValueError(f"partition {partition}: offset {offset} is not an offset")
        self._next[partition] = offset

    def started(self, partition: int) -> bool:
        return partition in self._next

    def admit(self, partition: int, offset: int) -> Verdict:
        """What to do with the message at ``offset`` of ``partition``."""
        expected = self._next.get(partition)
        if expected is None:
            return Verdict.UNSTARTED
        if offset == expected:
            self._next[partition] = offset + 1
            return Verdict.FOLD
        return Verdict.REPEAT if offset < expected else Verdict.AHEAD

    def expected(self, partition: int) -> int:
        """The offset ``partition`` is folded from next (KeyError if it is not started)."""
        return self._next[partition]

    def forget(self) -> None:
        """Partitions were revoked: each is started again at its committed offset on next use,
        since another consumer may have folded and committed past where this one stood."""
        self._next.clear()
