"""Where a consumer group stands on Apache Kafka, from Kafka itself."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition


async def group_position(
    bootstrap: str, group: str, topic: str, partitions: int
) -> dict[int, tuple[int, int | None]]:
    """Per partition: (end offset, the group's committed offset or None)."""
    tps = [TopicPartition(topic, partition) for partition in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()
    return {tp.partition: (end, committed[tp.partition]) for tp, end in ends.items()}


def wait_caught_up(
    bootstrap: str, group: str, topics: list[str], partitions: int, timeout: float
) -> dict[str, dict[int, tuple[int, int | None]]]:
    """Poll until the group committed every partition of ``topics`` up to its end offset."""
    deadline = time.monotonic() + timeout
    while True:
        marks = {
            topic: asyncio.run(group_position(bootstrap, group, topic, partitions))
            for topic in topics
        }
        done = all(end == done for per in marks.values() for end, done in per.values())
        if done or time.monotonic() > deadline:
            return marks
        time.sleep(1.0)
