"""A table write reaches the local store (RocksDB survives a kill -9) only once the records and
changelog records of its ship are acknowledged: after a crash, local state is never ahead of
what was emitted. Until then the agents read it from the output."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from agents.output import Output, OutputFailed
from tests.agents.test_output import FakeTable, FakeTopic, RecordingProducer


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
        await output.ship()
        assert topics(producer) == ["touches.email", "shoppers-changelog"]
        assert "ann" not in table.data  # handed over, not acknowledged: a crash loses both
        ack(producer, 1, offset=7)  # the changelog first: the touch is not acknowledged yet
        await asyncio.sleep(0)
        assert "ann" not in table.data
        ack(producer, 0)
        await asyncio.sleep(0)
        assert table.data["ann"] == {"sent": [1]} and output.get(table, "ann") == {"sent": [1]}
        assert output._acked[TopicPartition("shoppers-changelog", 0)] == 7

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
        await output.ship()
        producer.futures[0].set_exception(KafkaTimeoutError())
        ack(producer, 1)
        await asyncio.sleep(0)
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
        await output.ship()  # sends what the failed one had not handed over
        for index in range(len(producer.futures)):
            ack(producer, index)
        await asyncio.sleep(0)
        assert table.data["hal"] == {"sent": [1]}

    asyncio.run(scenario())
