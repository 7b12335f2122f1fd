"""The agents' way out: records and table writes queued per partition, shipped as batches.

Faust's ``Topic.send`` and a table's ``__setitem__`` cost a ``FutureMessage``, a trip through
the producer buffer, schema lookups and callbacks for every record, the largest share of a
worker's time with batched input, and ``AIOKafkaProducer.send`` still costs a coroutine, a
future and a done-callback per record. Here a record is serialized once (the same bytes Faust
writes: its JSON codec for table keys and values, raw topic keys, the orjson codec for topic
values) and queued for its topic partition (a keyed record without a partition goes where the
producer's partitioner would put it); :meth:`Output.ship` hands the queue to the producer as
closed record batches (``send_batch``), one future per batch.

At-least-once is kept: an agent's input offsets are committed from here
(:meth:`Output.commit_when_settled`, :meth:`Output.commit`) only once every ship handed over
before them is acknowledged and stored, so no input offset is committed before what it
produced is kept. A table write queues the changelog record for the table's changelog partition,
as ``Table.__setitem__`` does; every write of the two tables goes through here and a
partition's records leave in the order they were queued, so each key's changelog stays in
write order. A ship hands its changelog batches over only once the broker has acknowledged its
records: batches of different partitions are acknowledged independently (a batch retried after
a retriable error lands after later ones), and a changelog ahead of the records would, after a
crash, restore a state whose records were never delivered, with the input's event ids already
in it, so reading the input again would not make them again. The write reaches the local
store (RocksDB keeps it across a kill -9) only once every record and changelog record of its
ship is acknowledged, ships in order: after a crash the local state is never ahead of what was
emitted, and the input is read again from there.
Until then the agents read the new state here (:meth:`Output.get`, :meth:`Output.items`).
A delivery that failed stops the output (the next ship raises): the writes behind it never
reach the store, and the worker is restarted rather than going on with state it never stored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from faust.streams import _current_event

from agents import rocksdb_tables
from agents.rocksdb_tables import StoreBatches, handled_directly
from bus.partitioning import key_partition
from schemas.codec import dumps

log = logging.getLogger(__name__)

Queued = list[tuple[bytes | None, bytes | None]]  # (key, value) in order; value None: delete
# a record to send: (topic, value, key, partition); None: the key's hash picks the partition
Send = tuple[Any, Any, bytes | None, int | None]
# a table write: (partition, key, value, event); value None deletes the key
TableWrite = tuple[int, str, Any, Any]
_ABSENT = object()


class OutputFailed(RuntimeError):
    """Records handed to the producer were not delivered: the agent cannot go on."""


class PartitionGone(OutputFailed):
    """A record's partition is not at the broker: the worker cannot go on with this layout."""


@dataclass(slots=True)
class _Write:
    table: Any
    key: str
    value: Any  # None: delete
    event: Any  # Faust's current event when written: a store may write its partition's
    partition: int
    # the changelog record's key and value: what a RocksDB store keeps (agents.rocksdb_tables)
    encoded: tuple[bytes, bytes | None]


@dataclass
class _Shipment:
    """One ship: its table writes wait for the acknowledgement of all its batches."""

    writes: list[_Write]
    pending: int = 0
    sealed: bool = False  # every batch of the ship handed over (and counted in ``pending``)
    failed: BaseException | None = None
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # changelog: newest acked
    commits: dict[Any, int] = field(default_factory=dict)  # input offsets it settles
    records: list[asyncio.Future[Any]] = field(default_factory=list)  # its non-changelog batches

    @property
    def settled(self) -> bool:
        return self.sealed and self.pending == 0 and self.failed is None


class Output:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._kafka: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}  # declared topics and their partitions
        self._names: dict[Any, str] = {}  # declared topic -> its name
        self._queued: dict[tuple[str, int], Queued] = {}
        self._changelogs: dict[str, Any] = {}  # changelog topic -> its table
        self._shipping = asyncio.Lock()
        self._acked: dict[TopicPartition, int] = {}  # newest acknowledged changelog offsets
        self._written: dict[TopicPartition, int] = {}  # the offsets recorded in the stores
        self._writes: list[_Write] = []  # queued with the records, for the next ship
        self._unwritten: dict[int, dict[str, Any]] = {}  # id(table) -> key -> newest value
        self._shipments: deque[_Shipment] = deque()  # shipped, not yet in the stores, in order
        # changelogs with a write that did not reach its store: their offsets are no longer
        # recorded, so a restore starts before that write and brings it back
        self._unstored: set[str] = set()
        self._failure: BaseException | None = None
        self._commits: dict[Any, int] = {}  # input offsets settled, not committed yet

    def _producer(self) -> AIOKafkaProducer:
        if self._kafka is None:
            self._kafka = self._app.producer._ensure_producer()  # type: ignore[attr-defined]
        return self._kafka

    async def _declare(self, topic: faust.TopicT) -> str:
        name = self._names.get(topic)
        if name is not None:
            return name
        name = topic.get_topic_name()
        if name not in self._partitions:
            await topic.maybe_declare()
            self._partitions[name] = sorted(await self._producer().partitions_for(name))
        self._names[topic] = name
        return name

    def _queue(self, name: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        queued = self._queued.get((name, partition))
        if queued is None:
            self._queued[(name, partition)] = [(key, value)]
        else:
            queued.append((key, value))

    async def send(
        self,
        topic: faust.TopicT,
        value: Any,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue ``value`` (JSON) for ``topic``; the key's hash picks the partition if none."""
        await self.send_encoded(topic, dumps(value), key, partition)

    async def send_all(self, sends: Iterable[Send]) -> None:
        """:meth:`send` each of ``sends`` in order: ``(topic, value, key, partition)``."""
        for topic, value, key, partition in sends:
            name = self._names.get(topic) or await self._declare(topic)
            self._queue_for(name, dumps(value), key, partition)

    async def send_encoded(
        self,
        topic: faust.TopicT,
        payload: bytes,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue an already encoded message for ``topic``."""
        self._queue_for(await self._declare(topic), payload, key, partition)

    def _queue_for(
        self, name: str, payload: bytes, key: bytes | None, partition: int | None
    ) -> None:
        if partition is None:
            every = self._partitions[name]
            # the producer's own choice: murmur2 of the key, a random partition without one
            partition = random.choice(every) if key is None else key_partition(key, every)
        self._queue(name, partition, key, payload)

    async def put(self, table: Any, partition: int, key: str, value: Any) -> None:
        """``table[key] = value`` on ``partition``; ``None`` deletes the key. Read back with
        :meth:`get` until it reaches the store, after its ship is acknowledged."""
        await self.put_all(table, [(partition, key, value, faust.current_event())])

    async def put_all(self, table: Any, writes: Iterable[TableWrite]) -> None:
        """:meth:`put` each of ``writes`` in order: ``(partition, key, value, event)``, the
        event a store that keeps a store per partition writes the key's under (Faust's current
        event when it is written)."""
        name = await self._declare(table.changelog_topic)
        self._changelogs[name] = table
        unwritten = self._unwritten.setdefault(id(table), {})
        queue = self._queue
        queued = self._writes
        for partition, key, value, event in writes:
            encoded = (dumps(key), None if value is None else dumps(value))
            queue(name, partition, *encoded)
            unwritten[key] = value
            queued.append(_Write(table, key, value, event, partition, encoded))

    def get(self, table: Any, key: str) -> Any:
        """``table.get(key)``, with the writes not in the store yet. Read from the table's store
        (the agents' tables have no default): the table's own ``get`` only adds a sensor call,
        which the worker's monitor ignores, and two mapping layers, on every read; a RocksDB
        store's database is read directly (agents.rocksdb_tables)."""
        value = self._unwritten.get(id(table), {}).get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        data = table.data
        if handled_directly(data):
            event = faust.current_event()
            if event is not None:  # the partition being handled: Faust's store reads its own
                return rocksdb_tables.read(data, event.message.partition, key)
        return data.get(key)

    def items(self, table: Any) -> Iterator[tuple[str, Any]]:
        """``table.items()``, with the writes not in the store yet."""
        unwritten = dict(self._unwritten.get(id(table), {}))
        for key, value in table.items():
            if key not in unwritten:
                yield key, value
        for key, value in unwritten.items():
            if value is not None:
                yield key, value

    async def ship(self) -> None:
        """Hand everything queued to the producer: per partition, closed batches in queue
        order (a record too large for a batch goes alone, through ``send``); the records
        before the table writes, so a crash part way through leaves records sent again
        rather than states whose records were never sent. Returns once the producer has
        them, once the broker has acknowledged its records if it carries table writes."""
        # One ship at a time (the agents and the wall clock's timer share this output): two
        # interleaved would race for a partition's queue in the producer and could reorder
        # it. A caller also waits for a ship under way, which may be carrying its records.
        async with self._shipping:
            if self._failure is not None:
                raise OutputFailed(f"produced records were not delivered: {self._failure}")
            if not self._queued:
                return
            changelogs = self._changelogs
            queued = {tp: r for tp, r in self._queued.items() if tp[0] not in changelogs}
            queued.update((tp, r) for tp, r in self._queued.items() if tp[0] in changelogs)
            self._queued = {}
            shipment = _Shipment(self._writes)
            self._writes = []
            self._shipments.append(shipment)
            try:
                await self._hand_over(queued, shipment)
            except BaseException:
                # what was not handed over goes with the next ship, and these writes with it
                self._shipments.remove(shipment)
                self._writes = shipment.writes + self._writes
                raise
            shipment.sealed = True
            self._settle()

    async def _hand_over(self, queued: dict[tuple[str, int], Queued], shipment: _Shipment) -> None:
        producer = self._producer()
        waited = False
        for tp, records in queued.items():
            name, partition = tp
            start = 0
            try:
                if not waited and name in self._changelogs:
                    waited = True  # the changelogs come after every record (see ship)
                    await self._records_acknowledged(shipment)
                while start < len(records):
                    start += await self._send_from(
                        producer, name, partition, records, start, shipment
                    )
            except BaseException:
                self._requeue(queued, tp, start)
                raise

    async def _records_acknowledged(self, shipment: _Shipment) -> None:
        """Wait for the broker to acknowledge the records ``shipment`` handed over; raise if
        any was not delivered (its changelog batches are then never handed over)."""
        if shipment.records:
            await asyncio.wait(shipment.records)
        for sent in shipment.records:
            error = asyncio.CancelledError() if sent.cancelled() else sent.exception()
            if error is not None:
                raise OutputFailed(f"produced records were not delivered: {error}") from error

    async def _send_from(
        self,
        producer: AIOKafkaProducer,
        name: str,
        partition: int,
        records: Queued,
        start: int,
        shipment: _Shipment,
    ) -> int:
        """Send the records of one partition from ``start`` as one batch (or the one record
        too large for a batch alone); returns how many were handed over."""
        batch = producer.create_batch()
        count = 0
        for key, value in itertools.islice(records, start, None):
            if batch.append(key=key, value=value, timestamp=None) is None:
                break
            count += 1
        try:
            if count == 0:
                key, value = records[start]
                sent = await producer.send(name, value, key=key, partition=partition)
                count = 1
            else:
                batch.close()
                sent = await producer.send_batch(batch, name, partition=partition)
        except AssertionError as exc:  # aiokafka's own check that the broker has the partition
            raise PartitionGone(
                f"{name} has no partition {partition} at the broker "
                "(topics deleted, or re-created with fewer partitions)"
            ) from exc
        changelog = name in self._changelogs
        if not changelog:
            shipment.records.append(sent)
        shipment.pending += 1
        sent.add_done_callback(self._on_delivered(shipment, name, partition, changelog))
        return count

    def _requeue(
        self, queued: dict[tuple[str, int], Queued], failed: tuple[str, int], start: int
    ) -> None:
        """A ship that failed puts back what it had not handed over, from the failed batch
        on, ahead of what was queued since: the next ship sends it, in order."""
        left: dict[tuple[str, int], Queued] = {}
        pending = False
        for tp, records in queued.items():
            if tp == failed:
                pending = True
                records = records[start:]
            if pending and records:
                left[tp] = records
        for tp, records in self._queued.items():
            left[tp] = left[tp] + records if tp in left else records
        self._queued = left

    def _on_delivered(
        self, shipment: _Shipment, topic: str, partition: int, changelog: bool
    ) -> Callable[[asyncio.Future[Any]], None]:
        """Count a batch of ``shipment`` acknowledged, then store what has settled.

        A changelog batch counts by its base offset (its first record's), not its last
        record's: Faust's recovery stops a worker whose store says it holds more of a changelog
        than the broker's end offset, and tansu answers that end offset with the last batch's
        base offset + 1 (quirk 4 of ../shared/BROKER.md), so a worker restarted after a kill
        on its kept RocksDB state refused to start. A restore from the base offset applies the
        rest of the batch again, which the store already holds: the same values, in order."""
        tp = TopicPartition(topic, partition)

        def delivered(future: asyncio.Future[Any]) -> None:
            shipment.pending -= 1
            error = asyncio.CancelledError() if future.cancelled() else future.exception()
            if error is not None:
                log.error("produced records were not delivered: %s", error)
                shipment.failed = shipment.failed or error
                self._failure = self._failure or error
                return
            if changelog:
                offset = future.result().offset
                shipment.offsets[tp] = max(offset, shipment.offsets.get(tp, -1))
            self._settle()

        return delivered

    def commit_when_settled(self, offsets: dict[Any, int]) -> None:
        """Commit ``offsets`` (input partition -> next offset) once every ship so far is
        acknowledged and stored: what their messages produced is then kept."""
        if self._shipments:
            self._shipments[-1].commits.update(offsets)
        else:
            self._commits.update(offsets)

    def drop_commits(self) -> None:
        """Partitions were revoked: their settled offsets are not committed (another consumer
        may have committed past them since)."""
        self._commits.clear()
        for shipment in self._shipments:
            shipment.commits.clear()

    async def commit(self) -> None:
        """Commit the input offsets settled since the last commit. Faust has no public call
        for explicit offsets: ``_commit`` is its driver's (it skips partitions no longer
        assigned, and a commit refused by a rebalance leaves them to be read again)."""
        if not self._commits:
            return
        offsets, self._commits = self._commits, {}
        consumer: Any = self._app.consumer  # ConsumerT declares neither
        if await consumer._commit(offsets):
            self._app.monitor.on_tp_commit(offsets)

    def _settle(self) -> None:
        """Store the writes of the acknowledged ships, oldest first, up to the first one still
        waiting (a later ship's writes never reach the store before an earlier one's)."""
        changed: set[str] = set()
        batches = StoreBatches()
        while self._shipments and self._shipments[0].settled:
            shipment = self._shipments.popleft()
            self._commits.update(shipment.commits)
            for write in shipment.writes:
                if handled_directly(write.table.data):
                    batches.put(write.table, write.partition, *write.encoded)
                    self._written_through(write)
                elif not self._store(write):
                    self._unstored.add(write.table.changelog_topic.get_topic_name())
            for tp, offset in shipment.offsets.items():
                if offset > self._acked.get(tp, -1):
                    self._acked[tp] = offset
                changed.add(tp.topic)
        for name in changed:
            self._persist_offsets(self._changelogs[name], name, batches)
        self._unstored.update(batches.write())

    def _written_through(self, write: _Write) -> None:
        """``write`` is in its store (or refused there): read it from there on, unless a
        newer write of its key is waiting."""
        unwritten = self._unwritten.get(id(write.table), {})
        if unwritten.get(write.key, _ABSENT) is write.value:
            del unwritten[write.key]

    def _store(self, write: _Write) -> bool:
        """Write ``write`` to its table's local store through the store's mapping; False if
        the store refused it."""
        stored = True
        # the event it was written under: a store may write the store of its partition
        token = None if write.event is None else _current_event.set(weakref.ref(write.event))
        try:
            if write.value is None:
                write.table.data.pop(write.key, None)
            else:
                write.table.data[write.key] = write.value
        except Exception:  # a revoked partition's store may be closed: a restore brings it
            log.exception("a table write did not reach the local store")
            stored = False
        finally:
            if token is not None:
                _current_event.reset(token)
        self._written_through(write)
        return stored

    def _persist_offsets(self, table: Any, topic: str, batches: StoreBatches) -> None:
        """Record the acknowledged offsets of ``topic`` (the table's changelog) in the table's
        store, with the writes it just stored (a RocksDB store: in the same write batch, per
        partition, agents.rocksdb_tables): a restore resumes after them. Recorded as each ship
        settles, never later: a restore from an older offset re-applies the records since, and
        on tansu it stops at the last batch's base offset (quirk 4), so the older values it
        re-applies would replace newer ones this store holds from that batch's other records
        (a converted checkout open again)."""
        if topic in self._unstored:
            return
        for tp, offset in self._acked.items():
            if tp.topic == topic and self._written.get(tp) != offset:
                if handled_directly(table.data):
                    batches.record_offset(table, tp.partition, offset)
                else:
                    table.data.set_persisted_offset(tp, offset)
                self._written[tp] = offset
