"""agents.inputs over a stand-in for Faust's consumer: partitions start at their committed
offsets, a hole is read again, a revoked partition's message is left alone."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import IllegalStateError, KafkaConnectionError
from faust.types import TP

from agents.inputs import Inputs

TOPIC = "t-cart-events"
GENERATION = 7


class Consumer:
    def __init__(self, committed: dict[TP, int | None], earliest: int = 0) -> None:
        self.committed = committed
        self.earliest = earliest
        self.assigned = set(committed)
        self.seeks: list[tuple[int, int]] = []

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return {tp: offset for tp, offset in self.committed.items() if tp in self.assigned}

    async def earliest_offsets(self, tp: TP) -> dict[TP, int]:
        return {tp: self.earliest}

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        for tp, offset in offsets.items():
            if tp not in self.assigned:
                raise IllegalStateError(f"No current assignment for partition {tp}")
            self.seeks.append((tp.partition, offset))


def inputs_over(consumer: Consumer) -> Inputs:
    app = SimpleNamespace(
        consumer=consumer,
        timer=lambda interval: lambda function: function,
        flow_control=SimpleNamespace(is_active=lambda: True),
        consumer_generation_id=GENERATION,
    )
    topic = SimpleNamespace(get_topic_name=lambda: TOPIC)
    return Inputs(app, topic)  # type: ignore[arg-type]


def message(partition: int, offset: int, generation: int = 0) -> Any:
    return SimpleNamespace(
        partition=partition,
        offset=offset,
        tp=TP(TOPIC, partition),
        generation_id=GENERATION + generation,
    )


def admitted(inputs: Inputs, offered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    async def run() -> list[tuple[int, int]]:
        return [each for each in offered if await inputs.admit(message(*each))]

    return asyncio.run(run())


def test_partitions_start_at_their_committed_offsets_and_fold_in_order() -> None:
    consumer = Consumer({TP(TOPIC, 0): 5, TP(TOPIC, 1): None, TP("t-other", 0): 9}, earliest=2)
    inputs = inputs_over(consumer)
    # a message fetched before Faust's seek, from past the committed offset, is not folded
    offered = [(0, 7), (0, 5), (0, 6), (0, 6), (1, 2), (0, 7), (1, 3)]
    assert admitted(inputs, offered) == [(0, 5), (0, 6), (1, 2), (0, 7), (1, 3)]
    # both partitions of the topic started (and read again) at once; the other topic untouched
    assert consumer.seeks[:2] == [(0, 5), (1, 2)]
    assert consumer.seeks[2:] == [(0, 5)]  # (0, 7) came before 5: read again from 5


def test_a_hole_is_read_again_once_while_its_stragglers_come() -> None:
    consumer = Consumer({TP(TOPIC, 0): 0})
    inputs = inputs_over(consumer)
    assert admitted(inputs, [(0, 0), (0, 2), (0, 3), (0, 4)]) == [(0, 0)]
    assert consumer.seeks == [(0, 0), (0, 1)]
    assert admitted(inputs, [(0, 1), (0, 2)]) == [(0, 1), (0, 2)]
    asyncio.run(inputs.read_holes_again())
    assert consumer.seeks == [(0, 0), (0, 1)]  # filled: not read again


def test_a_hole_still_open_is_read_again_without_new_messages(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Faust may drop the hole's messages again after the seek (its filter moved on by
    messages fetched before it); the timer reads the partition again even if nothing else
    comes."""
    consumer = Consumer({TP(TOPIC, 0): 0})
    inputs = inputs_over(consumer)
    assert admitted(inputs, [(0, 0), (0, 3)]) == [(0, 0)]
    asyncio.run(inputs.read_holes_again())
    assert consumer.seeks == [(0, 0), (0, 1)]  # too soon
    monkeypatch.setattr("agents.inputs.SEEK_AGAIN_AFTER", 0.0)
    asyncio.run(inputs.read_holes_again())
    assert consumer.seeks == [(0, 0), (0, 1), (0, 1)]
    assert admitted(inputs, [(0, 1)]) == [(0, 1)]
    asyncio.run(inputs.read_holes_again())
    assert consumer.seeks == [(0, 0), (0, 1), (0, 1)]


def test_a_revoked_partitions_message_is_left_to_its_new_owner() -> None:
    consumer = Consumer({TP(TOPIC, 0): 3, TP(TOPIC, 1): 0})
    inputs = inputs_over(consumer)
    assert admitted(inputs, [(0, 3)]) == [(0, 3)]
    inputs.revoked()
    consumer.assigned = {TP(TOPIC, 1)}
    assert admitted(inputs, [(0, 4), (1, 0)]) == [(1, 0)]
    consumer.assigned = set()
    inputs.revoked()
    assert admitted(inputs, [(1, 1)]) == []  # revoked between delivery and its start


def test_the_windows_offsets_are_committed_once_settled() -> None:
    consumer = Consumer({TP(TOPIC, 0): 0, TP(TOPIC, 1): 4})
    inputs = inputs_over(consumer)
    admitted(inputs, [(0, 0), (0, 1), (1, 4)])
    committed: list[dict[Any, int]] = []
    output = SimpleNamespace(commit_when_settled=lambda offsets: committed.append(dict(offsets)))
    inputs.commit_when_settled(output)  # type: ignore[arg-type]
    inputs.commit_when_settled(output)  # type: ignore[arg-type]
    assert committed == [{TP(TOPIC, 0): 2, TP(TOPIC, 1): 5}]


def test_a_rebalance_during_the_start_skips_the_message_and_keeps_the_worker() -> None:
    class Revoking(Consumer):
        async def seek_to_committed(self) -> dict[TP, int | None]:
            found = await super().seek_to_committed()
            self.assigned = set()  # the rebalance took the partitions meanwhile
            return found

    inputs = inputs_over(Revoking({TP(TOPIC, 0): 0}))
    assert admitted(inputs, [(0, 0)]) == []


def test_a_broker_error_while_starting_skips_the_message_until_the_next_one() -> None:
    class Unavailable(Consumer):
        failures = 1

        async def seek_to_committed(self) -> dict[TP, int | None]:
            if self.failures:
                self.failures -= 1
                raise KafkaConnectionError("coordinator not available")
            return await super().seek_to_committed()

    consumer = Unavailable({TP(TOPIC, 0): 4})
    inputs = inputs_over(consumer)
    assert admitted(inputs, [(0, 4), (0, 4), (0, 5)]) == [(0, 4), (0, 5)]


def test_a_message_of_a_rebalance_or_an_earlier_generation_is_not_folded() -> None:
    consumer = Consumer({TP(TOPIC, 0): 0})
    inputs = inputs_over(consumer)

    async def run() -> list[bool]:
        stale = await inputs.admit(message(0, 0, generation=-1))
        inputs._app.flow_control.is_active = lambda: False  # type: ignore[attr-defined]
        rebalancing = await inputs.admit(message(0, 0))
        inputs._app.flow_control.is_active = lambda: True  # type: ignore[attr-defined]
        return [stale, rebalancing, await inputs.admit(message(0, 0))]

    assert asyncio.run(run()) == [False, False, True]
    assert consumer.seeks == [(0, 0)]  # nothing sought for the skipped ones
