"""``sender-dedup`` as the senders create it is compacted by Apache Kafka (tansu never compacts,
quirk 5): after the cleaner ran, one record per touch id is left, the latest."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bus.kafka import drain, producer
from senders.decide import DONE, SENDING
from senders.dedup import MARKER_KEY, DedupLog
from senders.service import ensure_compacted

TOUCHES = 300


async def topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [resource] = response.resources
        return {entry[0]: entry[1] for entry in resource[4]}
    finally:
        await admin.close()


async def clean_eagerly(bootstrap: str, topic: str) -> None:
    """Roll a segment every 100 ms and clean as soon as anything is dirty, so the cleaner
    works within the test; AlterConfigs replaces the topic's settings, so the policy is
    given again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        settings = {
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.01",
            "min.compaction.lag.ms": "0",
        }
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, settings)])
    finally:
        await admin.close()


async def touch_records(bootstrap: str, topic: str) -> Counter[bytes]:
    records = await drain(bootstrap, [topic], idle=1.0, timeout=10.0)
    return Counter(key for _topic, key, _value in records if key and key != MARKER_KEY)


async def fill_and_compact(bootstrap: str, topic: str) -> tuple[Counter[bytes], list]:
    await ensure_compacted(bootstrap, topic, 2)
    assert (await topic_configs(bootstrap, topic))["cleanup.policy"] == "compact"
    now = datetime.now(UTC)
    async with producer(bootstrap) as out:
        log = DedupLog(bootstrap, topic, out)
        for number in range(TOUCHES):
            await log.record(f"touch-{number}", SENDING, None, now)
        for number in range(TOUCHES):
            await log.record(f"touch-{number}", DONE, "delivered", now)
        before = await touch_records(bootstrap, topic)
        await clean_eagerly(bootstrap, topic)
        # The cleaner never touches a partition's active segment: an append after segment.ms
        # rolls it, and what was written before becomes cleanable.
        deadline = time.monotonic() + 60
        while True:
            await asyncio.sleep(0.3)
            for partition in (0, 1):
                await out.send_and_wait(topic, key=MARKER_KEY, value=b"{}", partition=partition)
            records = await drain(bootstrap, [topic], idle=1.0, timeout=10.0)
            after = Counter(key for _topic, key, _value in records if key != MARKER_KEY)
            if set(after.values()) == {1} or time.monotonic() > deadline:
                return before, records


def test_sender_dedup_is_compacted_to_the_latest_record_per_touch(broker):
    topic = f"k{uuid.uuid4().hex[:8]}-sender-dedup"
    before, records = asyncio.run(fill_and_compact(broker.bootstrap, topic))
    wanted = {f"touch-{number}".encode() for number in range(TOUCHES)}
    assert set(before) == wanted and set(before.values()) == {2}  # sending, then done
    kept = [(key, value) for _topic, key, value in records if key != MARKER_KEY]
    assert sorted(key for key, _ in kept) == sorted(wanted), (
        f"not compacted: {len(kept)} records left of {2 * TOUCHES}"
    )
    assert {(value["state"], value["outcome"]) for _, value in kept} == {(DONE, "delivered")}
