"""The agents' way out: records and table writes handed straight to the app's Kafka producer.

Faust's ``Topic.send`` and a table's ``__setitem__`` cost a ``FutureMessage``, a trip through
the producer buffer, schema lookups and callbacks for every record: with batched input that
was ~40% of the worker's time (bench/README.md, profile). Here a record is serialized once
(the same bytes Faust writes: its JSON codec for table keys and values, raw topic keys, the
orjson codec for topic values) and appended to aiokafka's
per-partition batch by ``AIOKafkaProducer.send``, without waiting for the acknowledgement.

At-least-once is kept: Faust flushes this same producer before it commits offsets
(``Consumer.commit`` -> ``producer.flush()``), so no input offset is committed before what it
produced is acknowledged. A table write updates the local store and appends the changelog
record to the table's changelog partition, as ``Table.__setitem__`` does; every write of the
two tables goes through here, so each key's changelog stays in write order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from schemas.codec import dumps

log = logging.getLogger(__name__)
PERSIST_EVERY = 1.0  # seconds between records of the changelog offsets in a store


def _delivery_failed(future: asyncio.Future[Any]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        log.error("a produced record was not delivered: %s", error)


class Output:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._kafka: AIOKafkaProducer | None = None
        self._declared: set[str] = set()
        self._persisted: dict[str, Callable[[asyncio.Future[Any]], None]] = {}
        self._acked: dict[TopicPartition, int] = {}  # newest acknowledged changelog offsets
        self._written: dict[TopicPartition, int] = {}  # the offsets recorded in the stores
        self._persisted_at: dict[str, float] = {}  # changelog topic -> when last recorded

    def _producer(self) -> AIOKafkaProducer:
        if self._kafka is None:
            self._kafka = self._app.producer._ensure_producer()  # type: ignore[attr-defined]
        return self._kafka

    async def _declare(self, topic: faust.TopicT) -> str:
        name = topic.get_topic_name()
        if name not in self._declared:
            await topic.maybe_declare()
            self._declared.add(name)
        return name

    async def send(
        self,
        topic: faust.TopicT,
        value: Any,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue ``value`` (JSON) for ``topic``; the key's hash picks the partition if none."""
        await self.send_encoded(topic, dumps(value), key, partition)

    async def send_encoded(
        self,
        topic: faust.TopicT,
        payload: bytes,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue an already encoded message for ``topic``."""
        name = await self._declare(topic)
        future = await self._producer().send(name, payload, key=key, partition=partition)
        future.add_done_callback(_delivery_failed)

    async def put(self, table: Any, partition: int, key: str, value: Any) -> None:
        """``table[key] = value`` on ``partition``; ``None`` deletes the key."""
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        name = await self._declare(table.changelog_topic)
        payload = None if value is None else dumps(value)
        future = await self._producer().send(name, payload, key=dumps(key), partition=partition)
        future.add_done_callback(self._on_changelog(name, partition))
        self._persist_offsets(table, name)

    def _on_changelog(self, topic: str, partition: int) -> Callable[[asyncio.Future[Any]], None]:
        """Remember the newest acknowledged changelog offset of the partition."""
        name = f"{topic}\x1f{partition}"
        found = self._persisted.get(name)
        if found is None:
            tp = TopicPartition(topic, partition)

            def persisted(future: asyncio.Future[Any]) -> None:
                if future.cancelled():
                    return
                if future.exception() is not None:
                    _delivery_failed(future)
                    return
                offset = future.result().offset
                if offset > self._acked.get(tp, -1):
                    self._acked[tp] = offset

            found = self._persisted[name] = persisted
        return found

    def _persist_offsets(self, table: Any, topic: str) -> None:
        """Record the acknowledged offsets of ``topic`` (the table's changelog) in the table's
        store (RocksDB keeps them, to resume a restore from there), at most once per
        PERSIST_EVERY seconds rather than on every acknowledgement (each is a database write,
        as much as the table write itself): an offset recorded late only makes a restore
        re-apply records it already has."""
        now = time.monotonic()
        if now - self._persisted_at.get(topic, float("-inf")) < PERSIST_EVERY:
            return
        self._persisted_at[topic] = now
        for tp, offset in self._acked.items():
            if tp.topic == topic and self._written.get(tp) != offset:
                table.data.set_persisted_offset(tp, offset)
                self._written[tp] = offset
