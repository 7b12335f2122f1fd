"""The agents' direct producer path writes the very bytes Faust's own send path would."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

import agents.output as output_module
from agents.output import Output
from agents.rocksdb_tables import StoreBatches
from bus.partitioning import key_partition
from schemas.codec import dumps
from tests.agents.apps import offline_pipeline

STATE: dict[str, Any] = {
    "pt": 3,
    "seq": 2,
    "c": {"total": "61.22", "contact": {"email": "a@example.com"}, "line_items": [{"q": 1}]},
    "pl": {"done": {"1": "sent"}, "cc": {"CODE": Decimal("4.10")}},
}


@pytest.fixture(scope="module")
def pipeline():  # type: ignore[no-untyped-def]
    return offline_pipeline("bytes-test")


@pytest.mark.parametrize("name", ["checkouts", "shoppers", "watermarks"])
def test_table_changelog_bytes_match_faust(pipeline, name: str) -> None:  # type: ignore[no-untyped-def]
    table = pipeline.app.tables[name]
    topic = table.changelog_topic
    key, _ = topic.prepare_key("store-1:abc", table.key_serializer)
    value, _ = topic.prepare_value(STATE, table.value_serializer)
    assert key == dumps("store-1:abc")  # JSON: the table restores str keys
    assert value == dumps(STATE)


@pytest.mark.parametrize("name", ["checkouts", "shoppers", "watermarks"])
def test_get_reads_the_tables_store_as_the_table_would(  # type: ignore[no-untyped-def]
    pipeline, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = pipeline.app.tables[name]
    table.data["store-1:kept"] = {"seq": 1}
    output = Output(pipeline.app)
    assert output.get(table, "store-1:kept") == table.get("store-1:kept") == {"seq": 1}
    assert output.get(table, "store-1:absent") is table.get("store-1:absent") is None

    def sensed(key: Any) -> None:
        raise AssertionError("a read through the table's own get")

    monkeypatch.setattr(table, "on_key_get", sensed)
    assert output.get(table, "store-1:kept") == {"seq": 1}
    del table.data["store-1:kept"]


def test_topic_record_bytes_match_faust(pipeline) -> None:  # type: ignore[no-untyped-def]
    for topic in (pipeline.recoveries, *pipeline.touch_topics.values()):
        key, _ = topic.prepare_key(b"store-1:abc", None)
        value, _ = topic.prepare_value({"batch": [STATE]}, None)
        assert key == b"store-1:abc"
        assert value == dumps({"batch": [STATE]})


class Acks:
    """An Output over a RocksDB-backed app, and its changelog batches acknowledged by hand."""

    def __init__(self, tmp_path: Any) -> None:
        app = offline_pipeline("offsets-test", tmp_path).app
        self.table = app.tables["checkouts"]
        self.topic = self.table.changelog_topic.get_topic_name()
        self.output = Output(app)
        self.output._changelogs[self.topic] = self.table
        self.loop = asyncio.new_event_loop()

    def __call__(self, offset: int) -> None:
        """A ship of one changelog batch acknowledged at base ``offset`` (an acknowledgement
        carries its batch's base offset, whatever its number of records)."""
        shipment = output_module._Shipment([], pending=1, sealed=True)
        self.output._shipments.append(shipment)
        future = self.loop.create_future()
        future.set_result(SimpleNamespace(offset=offset))
        self.output._on_delivered(shipment, self.topic, 2, changelog=True)(future)


def test_changelog_offsets_are_recorded_in_the_store_as_each_ship_settles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The newest acknowledged changelog offset reaches a RocksDB store (a restore resumes
    after it) with the ship's writes: an older one would make a restore re-apply older values
    over newer ones the store holds (on tansu it stops at the last batch's base offset)."""
    acked = Acks(tmp_path)
    table = acked.table
    tp = TopicPartition(acked.topic, 2)

    for offset, recorded in ((5, 5), (9, 9), (7, 9), (12, 12)):  # acks may come out of order
        acked(offset)
        assert table.data.persisted_offset(tp) == recorded
    acked.loop.close()


def test_no_offset_is_recorded_past_a_write_its_store_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A write that did not reach the store (its partition's store closed by a rebalance) must
    come back in the next restore: the changelog's offset is not recorded past it."""
    acked = Acks(tmp_path)
    table, topic, output = acked.table, acked.topic, acked.output
    tp = TopicPartition(topic, 2)
    acked(5)
    assert table.data.persisted_offset(tp) == 5

    class Closed:
        def __setitem__(self, key: str, value: Any) -> None:
            raise RuntimeError("the partition's store is closed")

    refused = output_module._Write(
        SimpleNamespace(data=Closed(), changelog_topic=FakeTopic(topic)),
        "k",
        {"n": 1},
        None,
        2,
        (dumps("k"), dumps({"n": 1})),
    )
    shipment = output_module._Shipment([refused], pending=1, sealed=True)
    output._shipments.append(shipment)
    future = acked.loop.create_future()
    future.set_result(SimpleNamespace(offset=9))
    output._on_delivered(shipment, topic, 2, changelog=True)(future)
    acked(12)
    batches = StoreBatches()
    output._persist_offsets(table, topic, batches)
    batches.write()
    assert table.data.persisted_offset(tp) == 5  # a restore starts before the refused write
    acked.loop.close()


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name

    async def maybe_declare(self) -> None:
        return None


class FakeTable:
    def __init__(self, changelog: str) -> None:
        self.data: dict[str, Any] = {}
        self.changelog_topic = FakeTopic(changelog)

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def items(self) -> Any:
        return self.data.items()


class RecordingProducer:
    """aiokafka's own batch builder (an unstarted producer's, 1 KiB batches); what would be
    sent is recorded, in order, with a future per batch the test answers as the broker."""

    def __init__(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._builder_of = AIOKafkaProducer(max_batch_size=1024)
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.refuse_at: int | None = None  # the index of a send to refuse, once

    def create_batch(self) -> Any:
        builder = self._builder_of.create_batch()
        builder.records = []
        original = builder.append

        def append(*, key: Any, value: Any, timestamp: Any) -> Any:
            metadata = original(key=key, value=value, timestamp=timestamp)
            if metadata is not None:
                builder.records.append((key, value))
            return metadata

        builder.append = append
        return builder

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))

    def ack_all(self, offset: int = 0) -> None:
        """Acknowledge every batch not answered yet."""
        for future in self.futures:
            if not future.done():
                future.set_result(SimpleNamespace(offset=offset))

    def _answer(self) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        assert batch.records, "an empty batch is never sent"
        if self.refuse_at == len(self.sent):
            self.refuse_at = None
            raise KafkaTimeoutError()
        self.sent.append((topic, partition, batch.records))
        return self._answer()

    async def send(self, topic: str, value: Any, *, key: Any, partition: int) -> Any:
        self.sent.append((topic, partition, [(key, value)]))
        return self._answer()


async def settle() -> None:
    """Let the tasks waiting on the event loop run until they wait on something else."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_ship_hands_each_partition_its_records_in_order_as_batches() -> None:
    async def scenario() -> None:
        output = Output(SimpleNamespace())  # type: ignore[arg-type]
        producer = output._kafka = RecordingProducer()  # type: ignore[assignment]
        table = FakeTable("checkouts-changelog")
        events = FakeTopic("shopper-events")
        big = b"x" * 2048  # larger than a batch: goes alone, in its place
        for n in range(6):
            await output.put(table, 1, f"k{n}", {"n": n, "pad": "y" * 300})
        await output.send_encoded(events, b"first", partition=2)
        await output.send_encoded(events, big, partition=2)
        await output.send_encoded(events, b"last", partition=2)
        await output.send_encoded(events, b"keyed", key=b"store:shopper")
        assert output.get(table, "k5")["n"] == 5 and not producer.sent  # queued, not sent yet
        shipping = asyncio.create_task(output.ship())
        await settle()
        assert {topic for topic, _, _ in producer.sent} == {"shopper-events"}  # records first
        for future in producer.futures:
            future.set_result(SimpleNamespace(offset=0))
        await shipping

        changelog = [r for t, p, rs in producer.sent if t == "checkouts-changelog" for r in rs]
        assert [k for k, _ in changelog] == [dumps(f"k{n}") for n in range(6)]
        assert len([s for s in producer.sent if s[0] == "checkouts-changelog"]) > 1  # split
        on_two = [v for t, p, rs in producer.sent if (t, p) == ("shopper-events", 2) for _, v in rs]
        assert on_two == [b"first", big, b"last"]
        keyed = [p for t, p, rs in producer.sent if rs == [(b"store:shopper", b"keyed")]]
        assert keyed == [key_partition(b"store:shopper", list(range(8)))]

        # The changelog offset recorded for a restore is its last batch's base offset, not its
        # last record's: tansu answers a partition's end offset with its last batch's base
        # + 1 (quirk 4 of ../shared/BROKER.md), and Faust's recovery refuses to start a
        # worker whose store records an offset at or past that end (a restart after kill -9).
        base = 40
        for (topic, _, records), future in zip(producer.sent, producer.futures, strict=True):
            if not future.done():
                future.set_result(SimpleNamespace(offset=base))
            if topic == "checkouts-changelog":
                assert len(records) > 1  # else its base is its last record
                tansu_end = base + 1
            base += len(records)
        await asyncio.sleep(0)
        assert output._acked[TopicPartition("checkouts-changelog", 1)] == tansu_end - 1

        producer.sent.clear()
        await output.ship()  # nothing queued: nothing sent
        assert producer.sent == []

    asyncio.run(scenario())


def test_a_failed_ship_keeps_what_it_did_not_hand_over_for_the_next_one() -> None:
    async def scenario() -> None:
        output = Output(SimpleNamespace())  # type: ignore[arg-type]
        producer = output._kafka = RecordingProducer()  # type: ignore[assignment]
        events = FakeTopic("shopper-events")
        for n in range(4):
            await output.send_encoded(events, b"a%d" % n + b"." * 400, partition=0)
        await output.send_encoded(events, b"b0", partition=1)
        producer.refuse_at = 1  # the second batch of partition 0
        with pytest.raises(KafkaTimeoutError):
            await output.ship()
        handed = [v[:2] for _, _, rs in producer.sent for _, v in rs]
        assert handed == [b"a0", b"a1"]
        await output.send_encoded(events, b"a4", partition=0)  # queued after the failure
        await output.ship()
        on_zero = [v[:2] for t, p, rs in producer.sent if p == 0 for _, v in rs]
        assert on_zero == [b"a0", b"a1", b"a2", b"a3", b"a4"]
        assert [v for t, p, rs in producer.sent if p == 1 for _, v in rs] == [b"b0"]

    asyncio.run(scenario())


def test_ship_hands_over_records_before_table_writes() -> None:
    """Whatever the order they were queued in: a crash part way through a ship then leaves
    records to be sent again, never a stored state whose records were not sent."""

    async def scenario() -> None:
        output = Output(SimpleNamespace())  # type: ignore[arg-type]
        producer = output._kafka = RecordingProducer()  # type: ignore[assignment]
        table = FakeTable("checkouts-changelog")
        await output.put(table, 3, "k", {"n": 1})
        await output.send_encoded(FakeTopic("shopper-events"), b"record", partition=3)
        shipping = asyncio.create_task(output.ship())
        await settle()
        producer.ack_all()
        await shipping
        assert [topic for topic, _, _ in producer.sent] == ["shopper-events", "checkouts-changelog"]

    asyncio.run(scenario())


class Committing:
    """Stands in for Faust's consumer: the explicit offsets the output commits."""

    def __init__(self) -> None:
        self.commits: list[dict[Any, int]] = []

    async def _commit(self, offsets: dict[Any, int]) -> bool:
        self.commits.append(dict(offsets))
        return True


def test_input_offsets_are_committed_once_every_ship_before_them_settled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A window's input offsets wait for the ships handed over up to it; a later ship that
    settles first does not let them through, and revoked partitions' offsets are dropped."""
    acked = Acks(tmp_path)
    output = acked.output
    consumer = Committing()
    object.__setattr__(output, "_app", SimpleNamespace(consumer=consumer, monitor=SimpleNamespace(
        on_tp_commit=lambda offsets: None)))  # fmt: skip
    first = output_module._Shipment([], pending=1, sealed=True)
    second = output_module._Shipment([], pending=1, sealed=True)
    output._shipments.extend([first, second])
    output.commit_when_settled({"cart-events/0": 10})
    delivered = acked.loop.create_future()
    delivered.set_result(SimpleNamespace(offset=0))
    output._on_delivered(second, "shopper-events", 0, changelog=False)(delivered)
    acked.loop.run_until_complete(output.commit())
    assert consumer.commits == []  # the first ship is not acknowledged yet
    output._on_delivered(first, "shopper-events", 1, changelog=False)(delivered)
    acked.loop.run_until_complete(output.commit())
    assert consumer.commits == [{"cart-events/0": 10}]
    output.commit_when_settled({"cart-events/0": 12})  # nothing in flight: settled at once
    output.drop_commits()
    acked.loop.run_until_complete(output.commit())
    assert consumer.commits == [{"cart-events/0": 10}]
    acked.loop.close()
