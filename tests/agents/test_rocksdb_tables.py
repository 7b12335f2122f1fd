"""A RocksDB table's settled writes reach its store as one batch per partition, with the
changelog offset they bring it to: what Faust's store reads back (and a restart reopens) is
what was written, and a batch the store refuses leaves neither its writes nor its offset."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from agents.output import Output
from agents.rocksdb_tables import handled_directly
from agents.windows import make_current
from tests.agents.apps import offline_pipeline
from tests.agents.test_output import RecordingProducer, settle

STATE = {"pt": 2, "seq": 4, "c": {"total": "61.22", "contact": {"email": "a@example.com"}}}


class Shipping:
    """An Output over a RocksDB-backed app's ``checkouts`` table, its producer answered by
    the test as the broker."""

    def __init__(self, state_dir: Path, app_id: str = "batches-test") -> None:
        self.app = offline_pipeline(app_id, state_dir).app
        self.table = self.app.tables["checkouts"]
        self.topic = self.table.changelog_topic.get_topic_name()
        self.output = Output(self.app)
        self.producer = RecordingProducer()
        self.output._kafka = self.producer  # type: ignore[assignment]
        self.output._partitions[self.topic] = list(range(8))  # declared: no broker here

    async def ship(self, writes: list[tuple[int, str, Any]], offset: int) -> None:
        """``writes`` (partition, key, state or None) in one ship, acknowledged at ``offset``."""
        for partition, key, state in writes:
            await self.output.put(self.table, partition, key, state)
        shipping = asyncio.create_task(self.output.ship())
        await settle()
        self.producer.ack_all(offset)
        await shipping
        await settle()


def test_writes_and_their_offset_reach_the_store_as_faust_reads_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        shipping = Shipping(tmp_path)
        assert handled_directly(shipping.table.data)
        await shipping.ship([(2, "s:a", STATE), (2, "s:b", {"seq": 1}), (5, "s:c", {})], 40)
        await shipping.ship([(2, "s:b", None), (2, "s:a", {**STATE, "seq": 5})], 44)
        data = shipping.table.data
        assert data["s:a"] == {**STATE, "seq": 5}
        assert "s:b" not in data
        assert data["s:c"] == {}
        assert shipping.output.get(shipping.table, "s:a") == {**STATE, "seq": 5}
        assert data.persisted_offset(TopicPartition(shipping.topic, 2)) == 44
        assert data.persisted_offset(TopicPartition(shipping.topic, 5)) == 40

    asyncio.run(scenario())


def test_a_restarted_worker_reopens_what_the_batches_wrote(tmp_path: Path) -> None:
    async def write() -> None:
        shipping = Shipping(tmp_path)
        await shipping.ship([(3, "s:kept", STATE), (3, "s:gone", {"seq": 1})], 7)
        await shipping.ship([(3, "s:gone", None)], 9)
        shipping.table.data.revoke_partitions(shipping.table, {TopicPartition(shipping.topic, 3)})

    asyncio.run(write())
    table = offline_pipeline("batches-test", tmp_path).app.tables["checkouts"]
    tp = TopicPartition(table.changelog_topic.get_topic_name(), 3)
    assert table.data.persisted_offset(tp) == 9  # (which opens the partition's database)
    assert table.data["s:kept"] == STATE
    assert "s:gone" not in table.data


def test_a_refused_batch_leaves_neither_its_writes_nor_its_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its writes come back from the changelog in the next restore only if no offset past
    them is recorded: the store records none for the table from then on."""

    async def scenario() -> None:
        shipping = Shipping(tmp_path)
        data = shipping.table.data
        await shipping.ship([(2, "s:a", {"seq": 1})], 10)
        opened = data._db_for_partition

        class Closed:
            def write(self, batch: Any) -> None:
                raise RuntimeError("the partition's database is closed")

        monkeypatch.setattr(data, "_db_for_partition", lambda partition: Closed())
        await shipping.ship([(2, "s:a", {"seq": 2}), (2, "s:b", {"seq": 1})], 12)
        monkeypatch.setattr(data, "_db_for_partition", opened)
        await shipping.ship([(2, "s:c", {"seq": 1})], 15)
        tp = TopicPartition(shipping.topic, 2)
        assert data.persisted_offset(tp) == 10
        assert data["s:a"] == {"seq": 1}
        assert "s:b" not in data
        assert data["s:c"] == {"seq": 1}  # stored; the restore from 10 brings s:b back too

    asyncio.run(scenario())


class Handling:
    """Faust's current event of an input message of ``partition``."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


def test_a_read_takes_the_value_faust_s_store_holds_for_the_partition_handled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        shipping = Shipping(tmp_path)
        table, output = shipping.table, shipping.output
        handled = Handling(3)
        make_current(handled)  # type: ignore[arg-type]
        table.data["s:kept"] = STATE  # Faust's own write, to the store of partition 3
        assert output.get(table, "s:kept") == table.data.get("s:kept") == STATE
        assert output.get(table, "s:absent") is table.data.get("s:absent") is None

        def through_faust(key: bytes) -> None:
            raise AssertionError("a read through Faust's store layers")

        monkeypatch.setattr(table.data, "_get", through_faust)
        assert output.get(table, "s:kept") == STATE
        elsewhere = Handling(4)
        make_current(elsewhere)  # type: ignore[arg-type]
        assert output.get(table, "s:kept") is None  # as Faust reads: the partition handled only

    asyncio.run(scenario())
