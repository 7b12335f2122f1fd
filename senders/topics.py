"""The partitions of a topic, asked of the broker rather than of a consumer's own metadata."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def partitions_of(bootstrap: str, topic: str, timeout: float) -> list[TopicPartition]:
    """Every partition of ``topic``; empty if it has none within ``timeout`` seconds.

    A consumer outside any group only keeps metadata of the topics it reads, so before it is
    assigned anything its ``partitions_for_topic`` may stay empty (it does on Apache Kafka);
    a metadata request for the topic itself is the broker's answer.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = sorted(
                part["partition"]
                for described in await admin.describe_topics([topic])
                if described["topic"] == topic and not described["error_code"]
                for part in described["partitions"]
            )
            if found or time.monotonic() > deadline:
                return [TopicPartition(topic, number) for number in found]
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
