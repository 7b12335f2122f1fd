"""The durable de-duplication log: one record per touch id on ``sender-dedup``.

Protocol (at most once per touch id, and every outcome reported as it happened):

1. before the provider call, write ``{state: sending}`` and wait for the broker's ack;
2. deliver;
3. write ``{state: done, outcome, result}`` (the very ``TouchResult`` about to be published)
   and wait for the ack; publish that result; commit the touch's offset; write
   ``{state: reported}`` (not waited for).

A crash after step 1 leaves ``sending`` without an outcome. The restarted (or rebalanced)
sender finds it and does **not** send again: it reports the outcome ``unknown``. That is the
chosen side of the trade-off: between "the provider took it" and "we wrote that down" there is
always a window, and a duplicate recovery email or SMS (or a second help-desk ticket) is
worse than a rare missing one. A crash before step 1 has sent nothing and the touch is simply
redelivered (its offset was not committed).

A crash after ``done`` and before ``reported`` may or may not have published the result. The
next sender to read the touch publishes the kept result again, unchanged (same touch id,
outcome, time, provider id): a consumer of ``touch-results`` sees the same result once or
twice, never ``deduplicated`` in place of what happened. Only a touch whose result is known to
be out (``reported``) is answered ``deduplicated`` when it is read again.

The topic is keyed by touch id (compaction keeps the last record per touch, so a ``reported``
record drops the kept result). On start and on
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
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import dumps, loads
from senders.topics import partitions_of

log = logging.getLogger(__name__)
MARKER_KEY = b"__catch_up_marker__"


@dataclass(frozen=True)
class Entry:
    touch_id: str
    state: str
    outcome: str | None
    at: str
    result: dict[str, Any] | None = None  # kept from ``done`` until ``reported``


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
        self._partitions = await partitions_of(self.bootstrap, self.topic, timeout)
        if not self._partitions:
            raise RuntimeError(f"topic {self.topic} has no partitions")
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
            result = data.get("result")
            entry = Entry(
                touch_id=str(data["touch_id"]),
                state=str(data["state"]),
                outcome=data.get("outcome"),
                at=str(data.get("at", "")),
                result=result if isinstance(result, dict) else None,
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed record on %s", self.topic)
            return 0
        self.entries[entry.touch_id] = entry
        return 1

    def get(self, touch_id: str) -> Entry | None:
        return self.entries.get(touch_id)

    async def record(
        self,
        touch_id: str,
        state: str,
        outcome: str | None,
        at: datetime,
        result: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> None:
        """Write (durably when ``wait``: acks=all, awaited), then remember.

        ``wait=False`` is for a record whose loss costs nothing but a repeat of what the
        previous one implies (``reported``: the kept result is published again, unchanged).
        """
        value: dict[str, Any] = {"touch_id": touch_id, "state": state, "outcome": outcome, "at": at}
        if result is not None:
            value["result"] = result
        key, data = touch_id.encode(), dumps(value)
        if wait:
            await self.producer.send_and_wait(self.topic, key=key, value=data)
        else:
            sent = await self.producer.send(self.topic, key=key, value=data)
            sent.add_done_callback(_log_failure)
        stamp = dumps(at).decode().strip('"')
        self.entries[touch_id] = Entry(touch_id, state, outcome, stamp, result)


def _log_failure(sent: asyncio.Future[Any]) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        log.warning("a de-dup record was not written: %s", sent.exception())
