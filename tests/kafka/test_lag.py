"""The consumer lag metric (telemetry/lag.py) against Apache Kafka's real end offsets.

tansu answers ListOffsets(latest) with the last batch's base offset + 1 (quirk 4), so there
``end_offsets()`` could not check the fetch high-water marks the metric is computed from. The
records here are produced in multi-record batches, which is where tansu's answer is short.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from bus.kafka import ensure_topics, producer
from cartbands.broker import free_port
from cartbands.replay import send_ticks
from recovery.ids import checkout_key
from schemas.codec import dumps
from telemetry.lag import LagReporter, OffsetBook
from tests.kafka.helpers import group_position
from tests.pipeline.helpers import T0, cart

COUNTS = {0: 40, 1: 25, 2: 10, 3: 3}  # records produced per partition
PROCESSED = {0: 30, 1: 25, 2: 0, 3: 1}  # records handed to processing per partition
COMMITTED = {2: 4}  # a partition with nothing read since the assignment, only a commit


async def produce_counts(bootstrap: str, topic: str) -> None:
    async with producer(bootstrap) as out:
        futures = [
            await out.send(topic, value=dumps({"n": n}), key=b"k", partition=partition)
            for partition, count in COUNTS.items()
            for n in range(count)
        ]
        await asyncio.gather(*futures)


async def lag_of_a_plain_consumer(bootstrap: str) -> tuple[dict, dict, dict]:
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], len(COUNTS))
    await produce_counts(bootstrap, topic)
    tps = [TopicPartition(topic, partition) for partition in COUNTS]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-group",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        book = OffsetBook()
        fetched: dict[int, int] = dict.fromkeys(COUNTS, 0)
        deadline = time.monotonic() + 30
        while fetched != COUNTS and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    fetched[tp.partition] += 1
                    if record.offset < PROCESSED[tp.partition]:
                        book.read(tp, record.offset)
        assert fetched == COUNTS
        book.committed({TopicPartition(topic, p): offset for p, offset in COMMITTED.items()})
        lags = LagReporter([topic]).sample(consumer, book)
        ends = await consumer.end_offsets(tps)
        gauge = {
            p: REGISTRY.get_sample_value(
                "cartbands_consumer_lag_messages", {"topic": topic, "partition": str(p)}
            )
            for p in COUNTS
        }
    finally:
        await consumer.stop()
    return (
        {partition: lag for (_topic, partition), lag in lags.items()},
        {tp.partition: end for tp, end in ends.items()},
        gauge,
    )


def test_lag_is_the_end_offset_minus_the_next_offset_to_process(broker):
    lags, ends, gauge = asyncio.run(lag_of_a_plain_consumer(broker.bootstrap))
    assert ends == COUNTS  # Kafka's end offsets, which tansu reports short for such batches
    position = {p: max(PROCESSED[p], COMMITTED.get(p, 0)) for p in COUNTS}
    assert lags == {p: ends[p] - position[p] for p in COUNTS} == {0: 10, 1: 0, 2: 6, 3: 2}
    assert gauge == {p: float(lag) for p, lag in lags.items()}


def scrape_lags(port: int, topic: str) -> dict[int, float]:
    pattern = re.compile(
        r'^cartbands_consumer_lag_messages\{partition="(\d+)",topic="'
        + re.escape(topic)
        + r'"\} (\S+)$',
        re.MULTILINE,
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            body = response.read().decode()
    except OSError:
        return {}
    return {int(partition): float(value) for partition, value in pattern.findall(body)}


def test_a_caught_up_worker_reports_zero_where_kafka_says_the_group_is_at_the_end(
    broker: Any, workers: Any, fast_policy: Path
) -> None:
    names = workers.names
    events = [cart(f"lag{i}", "120", T0 + i) for i in range(200)]
    records = [(checkout_key(e["store"], e["checkout"]), e) for e in events]

    async def feed() -> None:
        async with producer(broker.bootstrap) as out:
            futures = [
                await out.send(names.cart_events, key=key.encode(), value=dumps(value))
                for key, value in records
            ]
            await asyncio.gather(*futures)
        await send_ticks(broker.bootstrap, names.cart_events, [T0 + 600])

    asyncio.run(feed())
    port = free_port()
    workers.start(fast_policy, "--clock", "event", "--metrics-port", str(port))
    deadline = time.monotonic() + 90
    lags: dict[int, float] = {}
    marks: dict[int, tuple[int, int | None]] = {}
    while time.monotonic() < deadline:
        lags = scrape_lags(port, names.cart_events)
        marks = asyncio.run(
            group_position(broker.bootstrap, workers.app_id, names.cart_events, workers.partitions)
        )
        caught_up = all(end == committed for end, committed in marks.values())
        if caught_up and len(lags) == workers.partitions and set(lags.values()) == {0.0}:
            break
        time.sleep(1.0)
    assert all(end == committed for end, committed in marks.values()), (marks, workers.logs())
    assert sum(end for end, _ in marks.values()) == len(events) + workers.partitions  # + ticks
    assert lags == dict.fromkeys(range(workers.partitions), 0.0), workers.logs()
