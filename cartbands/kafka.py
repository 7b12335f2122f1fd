"""Small raw-Kafka helpers for the shell: create topics, produce records, drain topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.codec import dumps, loads


class DrainAborted(RuntimeError):
    """Waiting for records was given up because something it depended on failed."""


async def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    """Create the topics that do not exist yet, with ``partitions`` partitions each."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that never loses an acknowledged record (acks=all), batching briefly."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[str, Any]]) -> int:
    """Send ``(key, value)`` pairs as orjson and wait for every acknowledgement."""
    count = 0
    async with producer(bootstrap) as out:
        futures = []
        for key, value in records:
            futures.append(await out.send(topic, key=key.encode(), value=dumps(value)))
            count += 1
        await asyncio.gather(*futures)
    return count


def reader(bootstrap: str, topics: Iterable[str]) -> AIOKafkaConsumer:
    """A consumer outside any group that reads ``topics`` from their start (not started)."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )


async def drain(
    bootstrap: str,
    topics: Iterable[str],
    *,
    until: int | None = None,
    timeout: float = 30.0,
    idle: float | None = None,
    abort: Callable[[], str | None] | None = None,
    distinct: Callable[[Any], Hashable] | None = None,
) -> list[tuple[str, bytes | None, Any]]:
    """Read ``(topic, key, value)`` from the start of ``topics`` with no consumer group.

    Stops after ``until`` records, after ``idle`` seconds without a new record (once at least
    one arrived), or at ``timeout``; whichever comes first. ``abort`` is asked between polls
    and ends the wait with :class:`DrainAborted` when it returns a reason. With ``distinct``
    (a key of each value, e.g. its touch id), a record whose key was seen already is a repeat
    of at-least-once delivery: it is left out and does not count towards ``until``.
    """
    consumer = reader(bootstrap, topics)
    await consumer.start()
    seen: list[tuple[str, bytes | None, Any]] = []
    keys: set[Hashable] = set()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if until is not None and len(seen) >= until:
                break
            if idle is not None and seen and time.monotonic() - last > idle:
                break
            reason = abort() if abort is not None else None
            if reason:
                raise DrainAborted(reason)
            batch = await consumer.getmany(timeout_ms=200)
            for partition, messages in batch.items():
                for message in messages:
                    value = loads(message.value) if message.value is not None else None
                    if distinct is not None:
                        key = distinct(value)
                        if key in keys:
                            continue
                        keys.add(key)
                    seen.append((partition.topic, message.key, value))
                    last = time.monotonic()
    finally:
        await consumer.stop()
    return seen
