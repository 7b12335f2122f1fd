"""The gateway's producing path against a scripted producer: rounds, order, give-ups, timeouts."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from bus.partitioning import murmur2
from bus.topics import TopicNames
from gateway.emit import Emit
from gateway.output import Batcher, BrokerUnavailable, Output, pack
from gateway.topicguard import TopicGuard
from schemas.batches import records_of

NAMES = TopicNames("t-")
TOPIC = NAMES.cart_events
PARTITIONS = 4


class FakeBuilder:
    def __init__(self, capacity: int) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.capacity = capacity
        self.closed = False

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object | None:
        if self.closed or len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeCluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))


class FakeClient:
    cluster = FakeCluster()


class FakeProducer:
    """Hands each batch's future to the test, which plays the broker's answer."""

    def __init__(self, capacity: int = 1000) -> None:
        self.client = FakeClient()
        self.capacity = capacity
        self.sent: list[tuple[int, FakeBuilder, asyncio.Future[Any]]] = []
        self.refuse: Exception | None = None

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder(self.capacity)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    async def send_batch(self, batch: FakeBuilder, topic: str, *, partition: int) -> Any:
        assert topic == TOPIC and batch.closed, "a round's batches are closed: no extra linger"
        if self.refuse is not None:
            raise self.refuse
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, batch, future))
        return future

    def answer(self, error: Exception | None = None) -> None:
        for _, _, future in self.sent:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)


def _partition(key: bytes) -> int:
    every = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key, every, every))


async def _turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def _batcher(out: FakeProducer, linger: float = 0.0) -> Batcher:
    return Batcher(out, linger)  # type: ignore[arg-type]


def _submit(batcher: Batcher, key: bytes, value: bytes) -> asyncio.Future[None]:
    partition = batcher.partition(TOPIC, key)
    assert partition == _partition(key), "the partition producer.send would pick"
    return batcher.submit(TOPIC, partition, key, value)


async def test_an_idle_batcher_hands_a_record_over_at_once_and_releases_it_on_the_ack():
    out = FakeProducer()
    batcher = _batcher(out)
    future = _submit(batcher, b"k1", b"v1")
    await _turns()
    assert [(p, b.records) for p, b, _ in out.sent] == [(_partition(b"k1"), [(b"k1", b"v1")])]
    assert not future.done(), "released only once the broker acknowledged"
    out.answer()
    await _turns()
    assert future.done() and future.exception() is None


async def test_records_arriving_while_a_round_is_unanswered_form_the_next_round_in_order():
    out = FakeProducer()
    batcher = _batcher(out)
    first = _submit(batcher, b"key", b"0")
    await _turns()
    assert len(out.sent) == 1
    later = [_submit(batcher, b"key", str(n).encode()) for n in range(1, 30)]
    others = [_submit(batcher, f"other-{n}".encode(), b"x") for n in range(40)]
    await _turns()
    assert len(out.sent) == 1, "nothing more is handed over before the broker answers"
    out.answer()
    await _turns()
    assert first.done()
    second_round = out.sent[1:]
    partitions = [p for p, _, _ in second_round]
    assert len(partitions) == len(set(partitions)), "one batch per partition per round"
    assert sum(len(b.records) for _, b, _ in second_round) == 69
    (same_key,) = [b for p, b, _ in second_round if p == _partition(b"key")]
    values = [v for k, v in same_key.records if k == b"key"]
    assert values == [str(n).encode() for n in range(1, 30)], "a partition keeps its order"
    assert not any(f.done() for f in later + others)
    out.answer()
    await _turns()
    assert all(f.done() and f.exception() is None for f in later + others)


async def test_a_record_whose_request_gave_up_before_its_round_is_not_sent():
    out = FakeProducer()
    batcher = _batcher(out)
    _submit(batcher, b"a", b"1")
    await _turns()
    gave_up = _submit(batcher, b"b", b"2")
    kept = _submit(batcher, b"c", b"3")
    gave_up.cancel()
    out.answer()
    await _turns()
    sent = [record for _, batch, _ in out.sent[1:] for record in batch.records]
    assert sent == [(b"c", b"3")]
    out.answer()
    await _turns()
    assert kept.done() and kept.exception() is None


async def test_a_full_batch_continues_in_another_batch_of_the_same_round():
    out = FakeProducer(capacity=3)
    batcher = _batcher(out)
    futures = [_submit(batcher, b"same", str(n).encode()) for n in range(7)]
    await _turns()
    assert [len(b.records) for _, b, _ in out.sent] == [3, 3, 1]
    out.answer()
    await _turns()
    assert all(f.done() and f.exception() is None for f in futures)


async def test_a_failed_round_fails_its_records_and_the_next_round_still_goes():
    out = FakeProducer()
    batcher = _batcher(out)
    failed = _submit(batcher, b"a", b"1")
    await _turns()
    waiting = _submit(batcher, b"b", b"2")
    out.answer(KafkaTimeoutError())
    await _turns()
    assert isinstance(failed.exception(), KafkaTimeoutError)
    assert len(out.sent) == 2, "the next round left once the failed one was answered"
    out.answer()
    await _turns()
    assert waiting.done() and waiting.exception() is None


async def test_a_refused_hand_over_fails_its_records_without_blocking_later_rounds():
    out = FakeProducer()
    batcher = _batcher(out)
    out.refuse = KafkaError("producer closed")
    refused = _submit(batcher, b"a", b"1")
    await _turns()
    assert isinstance(refused.exception(), KafkaError)
    out.refuse = None
    later = _submit(batcher, b"a", b"2")
    await _turns()
    out.answer()
    await _turns()
    assert later.done() and later.exception() is None


async def test_linger_delays_the_first_hand_over_of_an_idle_batcher():
    out = FakeProducer()
    batcher = _batcher(out, linger=0.05)
    _submit(batcher, b"a", b"1")
    await _turns()
    assert out.sent == []
    await asyncio.sleep(0.1)
    assert len(out.sent) == 1


async def test_drain_hands_over_what_is_gathered_and_waits_for_the_answers():
    out = FakeProducer()
    batcher = _batcher(out)
    _submit(batcher, b"a", b"1")
    await _turns()
    last = _submit(batcher, b"a", b"2")
    draining = asyncio.create_task(batcher.drain())
    await _turns()
    assert not draining.done()
    out.answer()
    await _turns()
    assert len(out.sent) == 2 and not draining.done()
    out.answer()
    await asyncio.wait_for(draining, timeout=1.0)
    assert last.done() and last.exception() is None


@pytest.mark.parametrize("linger", [0.0, 0.002])
async def test_many_concurrent_senders_are_all_released(linger: float):
    out = FakeProducer()
    batcher = _batcher(out, linger)

    async def broker() -> None:
        while True:
            await asyncio.sleep(0.001)
            out.answer()

    answering = asyncio.create_task(broker())
    try:
        futures = []
        for n in range(500):
            futures.append(_submit(batcher, f"k{n % 37}".encode(), b"v"))
            if n % 50 == 0:
                await asyncio.sleep(0.001)
        await asyncio.wait_for(asyncio.gather(*futures), timeout=5.0)
    finally:
        answering.cancel()
    assert sum(len(b.records) for _, b, _ in out.sent) == 500
    assert len(out.sent) < 100, "records were gathered into few batches"


@given(st.binary(max_size=200))
def test_murmur2_is_kafkas(data: bytes):
    assert murmur2(data) == aiokafka_murmur2(data)


async def _topics_there() -> None:
    return None


def _output(out: FakeProducer, ack_timeout: float) -> Output:
    output = Output("unused:9092", NAMES, ack_timeout=ack_timeout)
    output._producer = out  # type: ignore[assignment]
    output._batcher = _batcher(out)
    output._guard = TopicGuard(_topics_there, _topics_there, on_fatal=lambda _: None)
    output._guard.verified = True
    return output


def _emit(key: str) -> Emit:
    return Emit("cart_events", key, {"type": "cart_updated", "checkout": key})


async def test_send_returns_once_acknowledged():
    out = FakeProducer()
    output = _output(out, ack_timeout=5.0)
    sending = asyncio.create_task(output.send([_emit("a"), _emit("b")]))
    await _turns()
    assert not sending.done()
    out.answer()
    await asyncio.wait_for(sending, timeout=1.0)
    sent = sorted(key for _, batch, _ in out.sent for key, _ in batch.records)
    assert sent == [b"a", b"b"]


async def test_no_acknowledgement_in_time_is_broker_unavailable_and_the_waiting_record_stays_home():
    out = FakeProducer()
    output = _output(out, ack_timeout=0.05)
    in_flight = asyncio.create_task(output.send([_emit("a")]))
    await _turns()
    waiting = asyncio.create_task(output.send([_emit("b")]))
    for task in (in_flight, waiting):
        with pytest.raises(BrokerUnavailable):
            await asyncio.wait_for(task, timeout=1.0)
    out.answer()  # the broker answers late: the next round has nothing left to send
    await _turns()
    assert [key for _, batch, _ in out.sent for key, _ in batch.records] == [b"a"]


async def test_a_failed_batch_is_broker_unavailable():
    out = FakeProducer()
    output = _output(out, ack_timeout=5.0)
    sending = asyncio.create_task(output.send([_emit("a")]))
    await _turns()
    out.answer(KafkaTimeoutError())
    with pytest.raises(BrokerUnavailable):
        await asyncio.wait_for(sending, timeout=1.0)


def _gathered(n: int, size: int = 10) -> list[Any]:
    loop = asyncio.get_running_loop()
    return [
        (f"k{i}".encode(), orjson.dumps({"i": i, "pad": "x" * size}), [loop.create_future()])
        for i in range(n)
    ]


async def test_pack_puts_a_partitions_records_in_batch_messages_in_order():
    items = _gathered(5)
    (packed,) = pack(items)
    key, value, futures = packed
    assert key is None and futures == [f for _, _, fs in items for f in fs]
    assert orjson.loads(value) == {"batch": [orjson.loads(v) for _, v, _ in items]}
    assert records_of(orjson.loads(value)) == [orjson.loads(v) for _, v, _ in items]


async def test_pack_leaves_a_lone_record_as_it_was_and_splits_at_the_size_limit():
    (lone,) = _gathered(1)
    assert pack([lone]) == [lone]
    items = _gathered(10, size=300)
    messages = pack(items, limit=1000)
    assert len(messages) > 1 and all(len(v) <= 1000 + 20 for _, v, _ in messages)
    unpacked = [r for _, v, _ in messages for r in records_of(orjson.loads(v))]
    assert unpacked == [orjson.loads(v) for _, v, _ in items], "every record once, in order"


async def test_a_packed_topic_sends_one_message_per_partition_per_round():
    out = FakeProducer()
    batcher = Batcher(out, packed=frozenset({TOPIC}))  # type: ignore[arg-type]
    _submit(batcher, b"first", b'{"n":0}')
    await _turns()
    later = [_submit(batcher, b"same", f'{{"n":{n}}}'.encode()) for n in range(1, 6)]
    out.answer()
    await _turns()
    ((partition, batch, _),) = out.sent[1:]
    assert partition == _partition(b"same")
    ((key, value),) = batch.records
    assert key is None
    assert records_of(orjson.loads(value)) == [{"n": n} for n in range(1, 6)]
    assert not any(f.done() for f in later)
    out.answer()
    await _turns()
    assert all(f.done() and f.exception() is None for f in later), "one ack releases them all"


async def test_the_gateway_packs_cart_events_only():
    out = FakeProducer()
    output = Output("unused:9092", NAMES)
    output._producer = out  # type: ignore[assignment]
    await output._connect_batcher(out)  # type: ignore[arg-type]
    assert output._batcher is not None and output._batcher.packed == {NAMES.cart_events}
