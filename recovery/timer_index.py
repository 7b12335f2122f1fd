"""Per-partition timer index derived from the tables' durable next-due times.

A pure data structure (no I/O), shared by the stream agents and the in-process simulator.

The durable truth is the next due time stored in each entity's state (with a sequence number
bumped on every change). This index is only a heap of ``(due, seq, key)`` per partition, rebuilt
from the table after a restart or rebalance. A popped entry whose ``seq`` no longer matches the
state is stale and skipped (lazy cancellation), so rescheduling never searches the heap and a
tick costs O(due · log n), not O(pending).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable


class TimerIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[float, int, str]]] = {}

    def built(self, partition: int) -> bool:
        return partition in self._heaps

    def rebuild(self, partition: int, entries: Iterable[tuple[float, int, str]]) -> None:
        heap = list(entries)
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def forget_all(self) -> None:
        """After a rebalance every partition's index is rebuilt from its table on next use."""
        self._heaps.clear()

    def schedule(self, partition: int, due: float | None, seq: int, key: str) -> None:
        if due is None:
            return
        heapq.heappush(self._heaps.setdefault(partition, []), (due, seq, key))

    def pop_due(
        self, partition: int, now: float, current: Callable[[str], int | None]
    ) -> list[tuple[float, str]]:
        """Entries due at ``now`` whose seq is still the entity's current seq, in due order.

        ``current(key)`` returns the entity's seq (None when it no longer exists).
        """
        heap = self._heaps.get(partition)
        out: list[tuple[float, str]] = []
        if not heap:
            return out
        seen: set[str] = set()
        while heap and heap[0][0] <= now:
            due, seq, key = heapq.heappop(heap)
            if key in seen or current(key) != seq:
                continue
            seen.add(key)
            out.append((due, key))
        return out

    def pending(self, partition: int | None = None) -> int:
        if partition is not None:
            return len(self._heaps.get(partition, ()))
        return sum(len(h) for h in self._heaps.values())
