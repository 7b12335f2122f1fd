"""A table write reaches the local store (RocksDB survives a kill -9) only once the records and
changelog records of its ship are acknowledged, and its changelog record reaches the broker only
once the ship's records are acknowledged: after a crash, neither the local state nor the
changelog it is restored from is ahead of what was emitted. Until then the agents read the
state from the output."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from agents.output import Output, OutputFailed
from tests.agents.test_output import FakeTable, FakeTopic, RecordingProducer, settle


def setup() -> tuple[Output, RecordingProducer, FakeTable, FakeTopic]:
    output = Output(SimpleNamespace())  # type: ignore[arg-type]
    producer = output._kafka = RecordingProducer()  # type: ignore[assignment]
    return output, producer, FakeTable("shoppers-changelog"), FakeTopic("touches.email")


def ack(producer: RecordingProducer, index: int, offset: int = 0) -> None:
    producer.futures[index].set_result(SimpleNamespace(offset=offset))


def topics(producer: RecordingProducer) -> list[str]:
    return [topic for topic, _, _ in producer.sent]


def test_a_write_reaches_the_store_after_its_records_are_acknowledged() -> None:
    async def scenario() -> None:
        output, producer, table, touches = setup()
        await output.send_encoded(touches, b"touch 1", partition=0)
        await output.put(table, 0, "ann", {"sent": [1]})
        assert "ann" not in table.data and output.get(table, "ann") == {"sent": [1]}
        shipping = asyncio.create_task(output.ship())
        await settle()
        # the touch is handed over, the changelog record waits for the touch's acknowledgement
        assert topics(producer) == ["touches.email"] and not shipping.done()
        ack(producer, 0)
        await shipping
        assert topics(producer) == ["touches.email", "shoppers-changelog"]
        assert "ann" not in table.data  # handed over, not acknowledged: a crash loses it
        ack(producer, 1, offset=7)
        await asyncio.sleep(0)
        assert table.data["ann"] == {"sent": [1]} and output.get(table, "ann") == {"sent": [1]}
        assert output._acked[TopicPartition("shoppers-changelog", 0)] == 7

    asyncio.run(scenario())


def test_the_changelog_never_reaches_the_broker_ahead_of_its_ships_records() -> None:
    """Records of several partitions are acknowledged apart, a retried one after the rest: the
    changelog waits for all of them, so a state restored after a crash has its records."""

    async def scenario() -> None:
        output, producer, table, touches = setup()
        await output.send_encoded(touches, b"touch 1", partition=0)
        await output.send_encoded(touches, b"touch 2", partition=5)
        await output.put(table, 0, "ann", {"sent": [1, 2]})
        shipping = asyncio.create_task(output.ship())
        await settle()
        ack(producer, 1)  # partition 5's batch; partition 0's still in flight (retried)
        await settle()
        assert topics(producer) == ["touches.email", "touches.email"]
        ack(producer, 0)
        await shipping
        assert topics(producer)[-1] == "shoppers-changelog"

    asyncio.run(scenario())


def test_writes_reach_the_store_in_ship_order_whatever_the_acknowledgements() -> None:
    async def scenario() -> None:
        output, producer, table, _ = setup()
        await output.put(table, 0, "bo", {"v": 1})
        await output.ship()
        await output.put(table, 1, "bo", {"v": 2})  # another partition: acknowledged apart
        await output.put(table, 1, "cy", {"v": 1})
        await output.ship()
        assert output.get(table, "bo") == {"v": 2}
        ack(producer, 1)
        await asyncio.sleep(0)
        assert "bo" not in table.data and "cy" not in table.data  # behind the first ship
        ack(producer, 0)
        await asyncio.sleep(0)
        assert table.data["bo"] == {"v": 2} and table.data["cy"] == {"v": 1}

    asyncio.run(scenario())


def test_a_delete_and_the_merged_view() -> None:
    async def scenario() -> None:
        output, producer, table, _ = setup()
        table.data.update(dy={"v": 0}, ed={"v": 0})
        await output.put(table, 0, "dy", None)
        await output.put(table, 0, "fi", {"v": 1})
        assert output.get(table, "dy") is None and table.data["dy"] == {"v": 0}
        assert dict(output.items(table)) == {"ed": {"v": 0}, "fi": {"v": 1}}
        await output.ship()
        ack(producer, 0)
        await asyncio.sleep(0)
        assert table.data == {"ed": {"v": 0}, "fi": {"v": 1}}
        assert dict(output.items(table)) == table.data

    asyncio.run(scenario())


def test_a_failed_delivery_keeps_its_writes_out_of_the_store_and_stops_the_output() -> None:
    async def scenario() -> None:
        output, producer, table, touches = setup()
        await output.send_encoded(touches, b"touch 1", partition=0)
        await output.put(table, 0, "gil", {"sent": [1]})
        shipping = asyncio.create_task(output.ship())
        await settle()
        producer.futures[0].set_exception(KafkaTimeoutError())
        with pytest.raises(OutputFailed):
            await shipping
        assert topics(producer) == ["touches.email"]  # the changelog record never left
        assert "gil" not in table.data
        await output.send_encoded(touches, b"touch 2", partition=0)
        with pytest.raises(OutputFailed):
            await output.ship()

    asyncio.run(scenario())


def test_a_ship_that_could_not_hand_over_keeps_its_writes_for_the_next() -> None:
    async def scenario() -> None:
        output, producer, table, touches = setup()
        await output.send_encoded(touches, b"touch 1", partition=0)
        await output.put(table, 0, "hal", {"sent": [1]})
        producer.refuse_at = 0
        with pytest.raises(KafkaTimeoutError):
            await output.ship()
        assert output.get(table, "hal") == {"sent": [1]}
        shipping = asyncio.create_task(output.ship())  # what the failed one had not handed over
        await settle()
        producer.ack_all()
        await settle()
        producer.ack_all()
        await shipping
        await asyncio.sleep(0)
        assert table.data["hal"] == {"sent": [1]}

    asyncio.run(scenario())
