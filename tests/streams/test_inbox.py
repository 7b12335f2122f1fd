"""streams.inbox: the source topics' delivery to their agents, bounded in bytes."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.inbox import MESSAGE_OVERHEAD, Inbox, InboxTopic, footprint, inbox_of


def message(partition: int, offset: int, size: int = 100) -> Message:
    return Message("t", partition, offset, 0.0, 0, None, b"k", b"v" * size, None)


class Fetching:
    """What the conductor's pressure callbacks do to the consumer, per partition."""

    def __init__(self) -> None:
        self.paused: set[int] = set()
        self.pauses: list[int] = []
        self._callbacks: dict[int, tuple[Any, Any]] = {}

    def callbacks(self, partition: int) -> dict[str, Any]:
        # the conductor builds one pair per partition and passes the same objects every time
        if partition not in self._callbacks:

            def high() -> None:
                self.paused.add(partition)
                self.pauses.append(partition)

            def drop() -> None:
                self.paused.discard(partition)

            self._callbacks[partition] = (high, drop)
        high, drop = self._callbacks[partition]
        return {"on_pressure_high": high, "on_pressure_drop": drop}


def deliver(inbox: Inbox, fetching: Fetching, each: Message) -> None:
    inbox.put_nowait_enhanced(each, **fetching.callbacks(each.partition))


def test_a_window_is_the_oldest_messages_up_to_its_size() -> None:
    inbox, fetching = Inbox(), Fetching()
    for offset in range(5):
        deliver(inbox, fetching, message(offset % 2, offset))

    async def run() -> list[list[int]]:
        return [[m.offset for m in await inbox.take(3, 0.01)] for _ in range(2)]

    # three are there: no waiting; then two, and the window waits up to 10 ms for a third
    assert asyncio.run(asyncio.wait_for(run(), 0.5)) == [[0, 1, 2], [3, 4]]


def test_a_window_ends_once_its_messages_count_its_bytes() -> None:
    inbox, fetching = Inbox(), Fetching()
    for offset, size in enumerate([1000, 3000, 10, 10, 9000, 9000]):
        deliver(inbox, fetching, message(0, offset, size))
    bound = footprint(message(0, 0, 1000)) + footprint(message(0, 1, 3000))

    async def run() -> list[list[int]]:
        return [[m.offset for m in await inbox.take(100, 0, bound)] for _ in range(3)]

    # a window ends with the message that reaches the bound; one message larger than the
    # bound alone is still taken, as a window of its own
    assert asyncio.run(run()) == [[0, 1], [2, 3, 4], [5]]


def test_a_window_waits_within_only_until_its_bytes_are_there() -> None:
    inbox, fetching = Inbox(), Fetching()

    async def run() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        deliver(inbox, fetching, message(0, 0, 10))
        loop.call_later(0.02, deliver, inbox, fetching, message(0, 1, 5000))
        started = loop.time()
        taken = await inbox.take(100, 30.0, 4000)
        return [m.offset for m in taken], loop.time() - started

    offsets, waited = asyncio.run(run())
    assert offsets == [0, 1]
    assert waited < 5.0


def test_a_window_waits_for_its_first_message_then_at_most_within() -> None:
    inbox, fetching = Inbox(), Fetching()

    async def run() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, deliver, inbox, fetching, message(0, 7))
        started = loop.time()
        taken = await inbox.take(10, 0.1)
        return [m.offset for m in taken], loop.time() - started

    offsets, waited = asyncio.run(run())
    assert offsets == [7]
    assert 0.14 <= waited < 1.0  # the first message, then within for more


def test_a_full_window_is_handed_over_without_waiting_within() -> None:
    inbox, fetching = Inbox(), Fetching()

    async def run() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        deliver(inbox, fetching, message(0, 0))
        loop.call_later(0.02, deliver, inbox, fetching, message(0, 1))
        started = loop.time()
        taken = await inbox.take(2, 30.0)
        return [m.offset for m in taken], loop.time() - started

    offsets, waited = asyncio.run(run())
    assert offsets == [0, 1]
    assert waited < 5.0


def test_partitions_pause_above_high_and_fetch_again_once_drained() -> None:
    size = footprint(message(0, 0))
    inbox, fetching = (
        Inbox(high_bytes=4 * size, drop_bytes=2 * size, full_bytes=8 * size),
        Fetching(),
    )
    for offset in range(3):
        deliver(inbox, fetching, message(0, offset))
    assert fetching.paused == set()
    deliver(inbox, fetching, message(1, 0))  # the fourth: at high, its partition pauses
    deliver(inbox, fetching, message(0, 3))  # what was fetched already still comes in
    deliver(inbox, fetching, message(0, 4))
    assert fetching.paused == {0, 1}
    assert fetching.pauses == [1, 0]  # each once
    assert inbox.waiting_bytes == 6 * size and not inbox.full()

    async def take(most: int) -> list[Message]:
        return await inbox.take(most, 0)

    asyncio.run(take(3))  # three left: above drop
    assert fetching.paused == {0, 1}
    asyncio.run(take(1))  # two left: at drop, every paused partition is fetched again
    assert fetching.paused == set()


def test_a_full_inbox_holds_delivery_until_a_window_is_taken() -> None:
    size = footprint(message(0, 0))
    inbox, fetching = Inbox(high_bytes=2 * size, drop_bytes=size, full_bytes=2 * size), Fetching()
    deliver(inbox, fetching, message(0, 0))
    deliver(inbox, fetching, message(0, 1))
    assert inbox.full()

    async def run() -> list[int]:
        put = asyncio.ensure_future(inbox.put(message(0, 2)))
        await asyncio.sleep(0.01)
        assert not put.done()  # held while full
        first = await inbox.take(1, 0)
        await asyncio.wait_for(put, 1.0)
        rest = await inbox.take(5, 0)
        return [m.offset for m in first + rest]

    assert asyncio.run(run()) == [0, 1, 2]


def test_clear_drops_what_waits_and_fetches_every_paused_partition_again() -> None:
    size = footprint(message(0, 0))
    inbox, fetching = Inbox(high_bytes=size, drop_bytes=0, full_bytes=4 * size), Fetching()
    deliver(inbox, fetching, message(2, 0))
    assert fetching.paused == {2}
    inbox.clear()
    assert fetching.paused == set() and len(inbox) == 0 and inbox.waiting_bytes == 0
    deliver(inbox, fetching, message(2, 1))
    assert fetching.pauses == [2, 2]  # paused again once it fills again


def test_a_thrown_stop_ends_the_windows_and_other_errors_are_raised() -> None:
    inbox, fetching = Inbox(), Fetching()

    async def run() -> list[list[int]]:
        loop = asyncio.get_running_loop()
        deliver(inbox, fetching, message(0, 0))
        loop.call_later(0.05, inbox._throw, StopAsyncIteration())
        return [[m.offset for m in window] async for window in inbox.windows(1, 0)]

    assert asyncio.run(run()) == [[0]]
    inbox._throw(RuntimeError("stopping"))
    with pytest.raises(RuntimeError, match="stopping"):
        asyncio.run(inbox.take(1, 0))


def test_bounds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="drop_bytes < high_bytes <= full_bytes"):
        Inbox(high_bytes=10, drop_bytes=10, full_bytes=20)
    with pytest.raises(ValueError, match="at least one"):
        asyncio.run(Inbox().take(0, 0))


def test_a_message_counts_its_key_value_and_overhead() -> None:
    assert footprint(message(0, 0, size=1000)) == 1 + 1000 + MESSAGE_OVERHEAD


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("deliver"), st.integers(0, 3), st.integers(0, 3000)),
            st.tuples(st.just("take"), st.integers(1, 6), st.integers(0, 6000)),
        ),
        max_size=60,
    )
)
def test_every_message_is_taken_once_in_order_and_no_partition_stays_paused(
    steps: list[tuple[str, int, int]],
) -> None:
    inbox = Inbox(high_bytes=4000, drop_bytes=1500, full_bytes=1 << 30)
    fetching = Fetching()
    delivered: list[Message] = []
    taken: list[Message] = []

    async def run() -> None:
        for kind, number, size in steps:
            if kind == "deliver":
                each = message(number, len(delivered), size)
                delivered.append(each)
                deliver(inbox, fetching, each)
                assert inbox.waiting_bytes < 4000 or number in fetching.paused
            elif len(inbox):
                window = await inbox.take(number, 0, size or None)
                assert 1 <= len(window) <= number
                if size:  # all but the last message of a window count less than its bytes
                    assert sum(footprint(m) for m in window[:-1]) < size
                taken.extend(window)
            assert inbox.waiting_bytes == sum(footprint(m) for m in delivered[len(taken) :])
            if inbox.waiting_bytes <= 1500 and kind == "take":
                assert fetching.paused == set()
        while len(inbox):
            taken.extend(await inbox.take(7, 0))

    asyncio.run(run())
    assert taken == delivered
    assert fetching.paused == set()


def test_an_inbox_topic_delivers_messages_themselves_to_its_inbox() -> None:
    app = faust.App("inbox-test", broker="kafka://127.0.0.1:9")
    topic = InboxTopic(app, topics=["t"], key_type=bytes, value_serializer="raw", acks=False)
    each = message(0, 0)

    async def run() -> None:
        stream = topic.stream()
        inbox = inbox_of(stream)
        assert await topic.decode(each, propagate=True) is each
        assert any(inbox is chan.queue for chan in app.topics)  # subscribed: the conductor's
        with pytest.raises(TypeError, match="not an InboxTopic"):
            inbox_of(app.topic("plain").stream())

    asyncio.run(run())
