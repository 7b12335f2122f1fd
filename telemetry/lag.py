"""Consumer lag from fetch high-water marks (``cartbands_consumer_lag_messages``).

On tansu, ListOffsets(latest) and so ``end_offsets()`` are wrong (see ../shared/BROKER.md);
the high-water mark carried by every fetch response is right. Lag of a partition is that mark
minus the next offset this process will process: one past the last record handed to a stream,
or the committed offset when nothing was read since the assignment.

The consumer and the offsets are duck-typed (a Faust consumer and ``app.monitor`` fit), so this
module needs neither Faust nor aiokafka.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from telemetry.metrics import CONSUMER_LAG


class TopicPartition(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class FetchingConsumer(Protocol):
    def assignment(self) -> Iterable[Any]: ...

    def highwater(self, tp: Any) -> int | None: ...


class OffsetsSeen(Protocol):
    """Faust's ``app.monitor`` has both mappings (TP -> offset)."""

    @property
    def tp_read_offsets(self) -> Mapping[Any, int]: ...

    @property
    def tp_committed_offsets(self) -> Mapping[Any, int]: ...


class OffsetBook:
    """Offsets seen by a plain aiokafka consumer loop (senders), in the shape LagReporter reads.

    Call ``read(tp, record.offset)`` for each record handed to processing and ``committed``
    with what was committed (next offsets, as Kafka stores them).
    """

    def __init__(self) -> None:
        self.tp_read_offsets: dict[Any, int] = {}
        self.tp_committed_offsets: dict[Any, int] = {}

    def read(self, tp: Any, offset: int) -> None:
        self.tp_read_offsets[tp] = offset

    def committed(self, offsets: Mapping[Any, int]) -> None:
        self.tp_committed_offsets.update(offsets)


def partition_lag(highwater: int | None, read: int | None, committed: int | None) -> int | None:
    """Messages not yet processed, or None when the high-water mark or position is unknown."""
    if highwater is None:
        return None
    if read is not None:
        position = read + 1
        if committed is not None:
            position = max(position, committed)
    elif committed is not None:
        position = committed
    else:
        return None
    return max(highwater - position, 0)


class LagReporter:
    """Sets the lag gauge for assigned partitions and removes it for partitions given away."""

    def __init__(self, topics: Collection[str] | None = None) -> None:
        self.topics = None if topics is None else frozenset(topics)
        self._reported: set[tuple[str, str]] = set()

    def report(self, lags: Mapping[tuple[str, int], int]) -> None:
        current = {(topic, str(partition)): lag for (topic, partition), lag in lags.items()}
        for topic, partition in self._reported - current.keys():
            CONSUMER_LAG.remove(topic, partition)
        for (topic, partition), lag in current.items():
            CONSUMER_LAG.labels(topic=topic, partition=partition).set(lag)
        self._reported = set(current)

    def sample(
        self, consumer: FetchingConsumer, offsets: OffsetsSeen
    ) -> dict[tuple[str, int], int]:
        """Read the consumer's assignment and fetch high-water marks; report and return lags."""
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            if self.topics is not None and tp.topic not in self.topics:
                continue
            try:
                highwater = consumer.highwater(tp)
            except (AssertionError, KeyError):
                continue  # revoked between assignment() and now: the next sample settles it
            lag = partition_lag(
                highwater, offsets.tp_read_offsets.get(tp), offsets.tp_committed_offsets.get(tp)
            )
            if lag is not None:
                lags[(tp.topic, int(tp.partition))] = lag
        self.report(lags)
        return lags
