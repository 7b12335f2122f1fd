"""Per-partition timer index derived from the tables' durable next-due times.

A pure data structure (no I/O), shared by the stream agents and the in-process simulator.

The durable truth is the next due time stored in each entity's state (with a sequence number
bumped on every change). This index is only a heap of ``(due, seq, key)`` per partition, rebuilt
from the table after a restart or rebalance, and is asked for an entity's current due time and
sequence when one of its entries comes up (:meth:`TimerIndex.pop_due`).

A state changes far more often than it falls due (a checkout is updated several times before its
abandonment deadline, each update pushing the deadline later), so an entity keeps one entry at
its earliest time: a new due time no earlier than an entry it has queued already is not pushed.
When that entry comes up and the entity's due time is later, it is queued again at that time.
An entry whose entity is gone or has nothing due is dropped (lazy cancellation), so rescheduling
never searches the heap and a tick costs O(due · log n), not O(pending).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

# an entity's current (due time or None, seq), or None when it no longer exists
Current = Callable[[str], tuple[float | None, int] | None]


class TimerIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[float, int, str]]] = {}
        # per partition, the earliest due time each entity has queued in the heap
        self._queued: dict[int, dict[str, float]] = {}

    def built(self, partition: int) -> bool:
        return partition in self._heaps

    def rebuild(self, partition: int, entries: Iterable[tuple[float, int, str]]) -> None:
        heap = list(entries)
        heapq.heapify(heap)
        self._heaps[partition] = heap
        queued: dict[str, float] = {}
        for due, _seq, key in heap:
            earliest = queued.get(key)
            if earliest is None or due < earliest:
                queued[key] = due
        self._queued[partition] = queued

    def forget_all(self) -> None:
        """After a rebalance every partition's index is rebuilt from its table on next use."""
        self._heaps.clear()
        self._queued.clear()

    def schedule(self, partition: int, due: float | None, seq: int, key: str) -> None:
        if due is None:
            return
        queued = self._queued.get(partition)
        if queued is None:
            queued = self._queued[partition] = {}
        earliest = queued.get(key)
        if earliest is not None and earliest <= due:
            return  # that entry comes up first, and queues the entity again if need be
        queued[key] = due
        heapq.heappush(self._heaps.setdefault(partition, []), (due, seq, key))

    def pop_due(self, partition: int, now: float, current: Current) -> list[tuple[float, str]]:
        """The entities whose current due time is at or before ``now``, each once, as
        ``(due, key)`` in the order of their current ``(due, seq, key)``."""
        heap = self._heaps.get(partition)
        if not heap:
            return []
        queued = self._queued.setdefault(partition, {})
        found: dict[str, tuple[float, int]] = {}
        later: list[tuple[float, int, str]] = []
        while heap and heap[0][0] <= now:
            due, _seq, key = heapq.heappop(heap)
            if queued.get(key) == due:
                del queued[key]
            if key in found:
                continue
            state = current(key)
            if state is None or state[0] is None:
                continue
            if state[0] <= now:
                found[key] = (state[0], state[1])
            else:
                later.append((state[0], state[1], key))
        for due, seq, key in later:
            self.schedule(partition, due, seq, key)
        fired = sorted((due, seq, key) for key, (due, seq) in found.items())
        return [(due, key) for due, _seq, key in fired]

    def pending(self, partition: int | None = None) -> int:
        if partition is not None:
            return len(self._heaps.get(partition, ()))
        return sum(len(h) for h in self._heaps.values())
