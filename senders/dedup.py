"""The durable de-duplication log: one record per touch id on ``sender-dedup``.

Protocol (at most once per touch id):

1. before the provider call, write ``{state: sending}`` and wait for the broker's ack;
2. deliver;
3. write ``{state: done, outcome}``; then publish the result and commit the touch's offset.

A crash after step 1 leaves ``sending`` without an outcome. The restarted (or rebalanced)
sender finds it and does **not** send again: it reports the outcome ``unknown``. That is the
chosen side of the trade-off: between "the provider took it" and "we wrote that down" there is
always a window, and a duplicate recovery email or SMS (or a second help-desk ticket) is
worse than a rare missing one. A crash before step 1 has sent nothing and the touch is simply
redelivered (its offset was not committed).

The topic is keyed by touch id (compaction keeps the last record per touch). On start and on
every partition assignment the sender *catches up*: it writes a marker with a fresh nonce to
every partition and reads until it has seen its own markers, so everything written before
(by any sender process, e.g. one that just lost the partition) is in memory. Sender processes
finish their in-flight touch before giving up a partition, so no two processes work on one
touch at once.

Limits, stated plainly: a *zombie* sender (one the group already declared dead, e.g. after a
long pause, that has not noticed yet) could still send a touch whose partition a new owner took;
Kafka would fence it with transactions, which tansu does not support. Within the provider's
idempotency window (Brevo's ``idempotencyKey``, 15 minutes) even that duplicate is absorbed.
Memory: one small entry per touch id ever seen (tansu never compacts; Apache Kafka does).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import dumps, loads

log = logging.getLogger(__name__)
MARKER_KEY = b"__catch_up_marker__"


@dataclass(frozen=True)
class Entry:
    touch_id: str
    state: str
    outcome: str | None
    at: str


class DedupLog:
    def __init__(self, bootstrap: str, topic: str, producer: AIOKafkaProducer) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.producer = producer
        self.entries: dict[str, Entry] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    async def start(self, timeout: float = 60.0) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while not partitions:
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {self.topic} has no partitions")
                await asyncio.sleep(0.2)
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)
        await self.catch_up(timeout)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def catch_up(self, timeout: float = 60.0) -> int:
        """Read every record written before now; returns how many were applied."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("DedupLog.start() first")
        async with self._lock:
            nonce = uuid.uuid4().hex
            marker = dumps({"marker": nonce})
            acks = [
                await self.producer.send(
                    self.topic, key=MARKER_KEY, value=marker, partition=tp.partition
                )
                for tp in self._partitions
            ]
            await asyncio.gather(*acks)
            pending = {tp.partition for tp in self._partitions}
            applied = 0
            deadline = time.monotonic() + timeout
            while pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"catching up on {self.topic} took more than {timeout}s")
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    for record in records:
                        if record.key == MARKER_KEY:
                            if loads(record.value).get("marker") == nonce:
                                pending.discard(tp.partition)
                            continue
                        applied += self._apply(record.value)
            return applied

    def _apply(self, value: bytes | None) -> int:
        if value is None:
            return 0
        try:
            data = loads(value)
            entry = Entry(
                touch_id=str(data["touch_id"]),
                state=str(data["state"]),
                outcome=data.get("outcome"),
                at=str(data.get("at", "")),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed record on %s", self.topic)
            return 0
        self.entries[entry.touch_id] = entry
        return 1

    def get(self, touch_id: str) -> Entry | None:
        return self.entries.get(touch_id)

    async def record(self, touch_id: str, state: str, outcome: str | None, at: datetime) -> None:
        """Write durably (acks=all, awaited), then remember."""
        value = {"touch_id": touch_id, "state": state, "outcome": outcome, "at": at}
        await self.producer.send_and_wait(self.topic, key=touch_id.encode(), value=dumps(value))
        self.entries[touch_id] = Entry(touch_id, state, outcome, dumps(at).decode().strip('"'))
