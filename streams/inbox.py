"""A source topic whose messages wait for their agent in an inbox, not in a Faust stream.

Faust's conductor hands each message of a subscribed topic to the topic's queue as an ``Event``;
a stream then takes the events one at a time (queue, current-event context, sensor calls), and
``take_events`` buffers them again into lists. The agents take their input in windows and keep
its offsets themselves (agents/inputs.py), so for their source topics all of that is work per
message that nobody reads: here the conductor's delivery puts the ``Message`` itself into an
:class:`Inbox`, which the agent empties a window at a time. Faust's consumer, its group and its
seeks are unchanged; so are the tables, which the agents write as before.

The inbox is bounded in bytes, not messages: a source message may hold one event (~1 KB) or a
batch of a hundred (~70 KB), so a bound in messages is either too small for the first (the
fetcher pauses partitions while the agent could use them) or far too large for the second.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import faust
from faust.types import Message

# Above this many bytes waiting, the partition a message came from is no longer fetched; below
# DROP_BYTES every such partition is fetched again. What one fetch round already holds is still
# taken (up to FULL_BYTES, then delivery waits for the agent): with the worker's settings a
# round is up to 4 MiB for each of 8 partitions.
HIGH_BYTES = 32 * 1024 * 1024
DROP_BYTES = 12 * 1024 * 1024
FULL_BYTES = 64 * 1024 * 1024
# what a waiting message costs beyond its key and value (Message, its TP and header objects)
MESSAGE_OVERHEAD = 400


def footprint(message: Message) -> int:
    """The bytes a waiting message is counted for."""
    return (
        max(message.serialized_key_size or 0, 0)
        + max(message.serialized_value_size or 0, 0)
        + MESSAGE_OVERHEAD
    )


class Inbox:
    """The messages of one source topic delivered to this worker and not yet taken, in the
    order the conductor delivered them.

    Its interface to Faust is the part of a channel's queue that Faust uses when no stream
    reads the channel: the conductor's ``full``, ``put_nowait_enhanced`` (with the callbacks
    that pause and resume fetching the message's partition) and ``put`` (awaited while full),
    and ``_throw``, with which a stopping actor ends its channel's iteration."""

    def __init__(
        self,
        high_bytes: int = HIGH_BYTES,
        drop_bytes: int = DROP_BYTES,
        full_bytes: int = FULL_BYTES,
    ) -> None:
        if not 0 <= drop_bytes < high_bytes <= full_bytes:
            raise ValueError("an inbox needs 0 <= drop_bytes < high_bytes <= full_bytes")
        self._high = high_bytes
        self._drop = drop_bytes
        self._full = full_bytes
        self._messages: deque[Message] = deque()
        self._bytes = 0
        # partitions not fetched while the inbox drains: their callbacks that fetch them again
        self._paused: dict[Callable[[], None], None] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._want = 1
        self._want_bytes = 1
        self._space: asyncio.Future[None] | None = None
        self._thrown: BaseException | None = None

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def waiting_bytes(self) -> int:
        return self._bytes

    def full(self) -> bool:
        return self._bytes >= self._full

    def put_nowait_enhanced(
        self,
        value: Message,
        *,
        on_pressure_high: Callable[[], None],
        on_pressure_drop: Callable[[], None],
    ) -> bool:
        """Add ``value``; True if its partition is no longer fetched (``on_pressure_high`` was
        called; ``on_pressure_drop`` is called once the inbox has drained)."""
        self._messages.append(value)
        self._bytes += footprint(value)
        paused = False
        if self._bytes >= self._high and on_pressure_drop not in self._paused:
            self._paused[on_pressure_drop] = None
            on_pressure_high()
            paused = True
        self._wake_taker()
        return paused

    async def put(self, value: Message) -> None:
        """Add ``value`` once the inbox is not full."""
        while self.full():
            if self._space is None or self._space.done():
                self._space = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._space)
        self._messages.append(value)
        self._bytes += footprint(value)
        self._wake_taker()

    def _wake_taker(self) -> None:
        waiter = self._waiter
        if (
            waiter is not None
            and (len(self._messages) >= self._want or self._bytes >= self._want_bytes)
            and not waiter.done()
        ):
            waiter.set_result(None)

    async def windows(
        self, most: int, within: float, most_bytes: int | None = None
    ) -> AsyncIterator[list[Message]]:
        """Windows (:meth:`take`) until the iteration is ended (``_throw`` of
        ``StopAsyncIteration``)."""
        while True:
            try:
                window = await self.take(most, within, most_bytes)
            except StopAsyncIteration:
                return
            yield window

    async def take(self, most: int, within: float, most_bytes: int | None = None) -> list[Message]:
        """The next window: at least one message; at most ``most``, and no more once they
        count ``most_bytes``. Once one is waiting, up to ``within`` seconds more are waited
        for, unless a whole window is already there. Raises what was thrown into the inbox,
        once."""
        if most < 1:
            raise ValueError("a window takes at least one message")
        limit = sys.maxsize if most_bytes is None else most_bytes
        self._raise_thrown()
        if not self._messages:
            await self._arrival(1, 1, None)
            self._raise_thrown()
        if len(self._messages) < most and self._bytes < limit and within > 0:
            await self._arrival(most, limit, within)
            self._raise_thrown()
        return self._pop(most, limit)

    def _throw(self, exc: BaseException) -> None:
        self._thrown = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _raise_thrown(self) -> None:
        thrown, self._thrown = self._thrown, None
        if thrown is not None:
            raise thrown

    def clear(self) -> None:
        """Drop every waiting message (their partitions were revoked; what is still ours is
        read again from the committed offsets) and fetch every paused partition again."""
        self._messages.clear()
        self._bytes = 0
        self._drained()

    async def _arrival(self, want: int, want_bytes: int, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter, self._want, self._want_bytes = waiter, want, want_bytes
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _pop(self, most: int, most_bytes: int) -> list[Message]:
        messages = self._messages
        taken: list[Message] = []
        size = 0
        while messages and len(taken) < most and size < most_bytes:
            message = messages.popleft()
            taken.append(message)
            size += footprint(message)
        self._bytes -= size
        if self._paused and self._bytes <= self._drop:
            self._drained()
        if self._space is not None and not self.full() and not self._space.done():
            self._space.set_result(None)
        return taken

    def _drained(self) -> None:
        paused, self._paused = self._paused, {}
        for fetch_again in paused:
            fetch_again()
        if self._space is not None and not self._space.done():
            self._space.set_result(None)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class InboxTopic(faust.Topic):
    """A source topic delivered to an :class:`Inbox`: the conductor's ``decode`` is the
    message itself (the agent decodes its bytes), and the queue it puts into is the inbox."""

    def _compile_decode(self) -> None:
        """No decoder compiled from the schema (faust.Topic sets one per instance): the
        class's :meth:`decode` stays."""

    @property
    def queue(self) -> Any:  # the conductor's queue interface, which Inbox implements
        if self._queue is None:
            self._queue = cast(Any, Inbox())
        return self._queue

    async def decode(self, message: Message, *, propagate: bool = False) -> Any:
        return message


def source_topic(app: faust.App, name: str, partitions: int | None) -> InboxTopic:
    """Topic ``name`` as an agent's source: delivered to an inbox, values left as bytes until
    the agent decodes them (agents/messages.py), and no Faust acknowledgements: the agent
    commits the offsets it took itself (agents/inputs.py)."""
    return InboxTopic(
        app,
        topics=[name],
        key_type=bytes,
        value_serializer="raw",
        partitions=partitions,
        acks=False,
    )


def inbox_of(stream: faust.StreamT[Any]) -> Inbox:
    """Subscribe the agent's ``stream`` to its topic (as iterating it would) and return the
    inbox its messages are delivered to, instead of iterating the stream."""
    channel: Any = stream.channel.__aiter__()  # the iterating clone, now in the conductor
    inbox = channel.queue
    if not isinstance(inbox, Inbox):
        raise TypeError(f"{channel} is not an InboxTopic: its messages go to a Faust stream")
    return inbox
