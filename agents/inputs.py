"""An agent's input offsets: what it folds (bus.cursor) and what it commits.

The agents' source topics are declared without Faust acknowledgements (``acks=False`` in
streams.app), so Faust neither counts nor commits their offsets: after its own seek to the
committed offsets, its count registers offsets it had already delivered as a hole, and then
commits one offset at a time, or past messages it dropped. Here each partition is started at
its committed offset, folded in order without repeats or holes (a hole is read again), and
committed once what its messages produced is acknowledged (:meth:`Output.commit_when_settled`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from faust.types import TP, Message

from agents.output import Output
from bus.cursor import InputCursor, Verdict

log = logging.getLogger(__name__)
# A hole is read again at once. Messages Faust fetched before that seek may still come after
# it, and its read-offset filter then drops the hole's messages again, however many arrive
# later: a hole still open after this long is read again (a timer, so an idle input does
# not leave it open).
SEEK_AGAIN_AFTER = 1.0


class Inputs:
    """The offsets of one source topic of one agent."""

    def __init__(self, app: faust.App, topic: faust.TopicT) -> None:
        self._app = app
        self._topic = topic.get_topic_name()
        self._cursor = InputCursor()
        self._holes: dict[int, tuple[TP, float]] = {}  # partition -> (its TP, when sought)
        self._folded: dict[TP, int] = {}  # the window's partitions: their next offsets

        @app.timer(SEEK_AGAIN_AFTER)
        async def read_holes_again() -> None:
            await self.read_holes_again()

    async def admit(self, message: Message) -> bool:
        """Whether to fold ``message``: the next of its partition. A repeat is skipped; a
        message past a hole is skipped and the partition read again from the hole. So is one
        taken while the group rebalances, or fetched in an earlier generation of the group
        (as Faust's stream skips them): Faust seeks the partitions it assigns to their
        committed offsets, and a seek of ours during the rebalance can wait for a position
        the broker gives only once it is over."""
        app = self._app
        if not app.flow_control.is_active() or message.generation_id != app.consumer_generation_id:
            return False
        partition = message.partition
        verdict = self._cursor.admit(partition, message.offset)
        if verdict is Verdict.UNSTARTED:
            if not await self._start(message.tp):
                return False
            verdict = self._cursor.admit(partition, message.offset)
        if verdict is Verdict.FOLD:
            self._folded[message.tp] = message.offset + 1
            if self._holes:
                self._holes.pop(partition, None)
            return True
        if verdict is Verdict.AHEAD and partition not in self._holes:
            log.warning(
                "%s[%d]: offset %d came before %d; reading the partition again from there",
                self._topic,
                partition,
                message.offset,
                self._cursor.expected(partition),
            )
            await self._read_again(message.tp)
        return False

    async def _start(self, tp: TP) -> bool:
        """Start every assigned partition of the topic not started yet at its committed offset
        (its first offset if none), and read it again from there: messages fetched before
        Faust's own seek may have come from elsewhere. Seeks go through ``seek_wait``, which
        runs them on the consumer's thread (a seek from here races its fetch). False if ``tp``
        is no longer assigned: a message of a revoked partition is left to its new owner."""
        consumer: Any = self._app.consumer  # ConsumerT does not declare seek_to_committed
        try:
            assigned = consumer.assignment()
            if tp not in assigned:
                return False
            committed = await consumer.seek_to_committed()
            mine = sorted(
                (each for each in assigned if each.topic == self._topic),
                key=lambda each: each.partition,
            )
            starts: dict[TP, int] = {}
            for each in mine:
                if self._cursor.started(each.partition):
                    continue
                offset = committed.get(each)
                if offset is None or offset < 0:
                    offset = (await consumer.earliest_offsets(each)).get(each) or 0
                starts[each] = offset
            await consumer.seek_wait(starts)
            for each, offset in starts.items():
                self._cursor.start(each.partition, offset)
        except IllegalStateError:
            log.info("%s: partitions revoked while starting them", self._topic)
        except (KafkaError, TimeoutError) as exc:
            # the message is skipped, its partition unstarted: the next one starts it again
            log.warning("%s: could not start partitions yet: %r", self._topic, exc)
        return self._cursor.started(tp.partition)

    async def _read_again(self, tp: TP) -> None:
        """Read ``tp`` again from the offset it is folded from next."""
        self._holes[tp.partition] = (tp, time.monotonic())
        try:
            await self._app.consumer.seek_wait({tp: self._cursor.expected(tp.partition)})
        except IllegalStateError:  # revoked meanwhile: its new owner reads it
            log.info("%s[%d]: revoked before it was read again", tp.topic, tp.partition)
        except (KafkaError, TimeoutError) as exc:  # the timer reads the hole again
            log.warning("%s[%d]: could not read again yet: %r", tp.topic, tp.partition, exc)

    async def read_holes_again(self) -> None:
        """Read again the partitions whose hole is still open SEEK_AGAIN_AFTER after their
        last seek."""
        now = time.monotonic()
        for partition, (tp, sought) in list(self._holes.items()):
            # (another seek of this loop may have let the agent fill it meanwhile)
            if partition in self._holes and now - sought >= SEEK_AGAIN_AFTER:
                await self._read_again(tp)

    def commit_when_settled(self, output: Output) -> None:
        """The window is handed over: commit its partitions' offsets once the output has
        what they produced acknowledged."""
        if self._folded:
            output.commit_when_settled(self._folded)
            self._folded = {}

    def revoked(self) -> None:
        """Partitions were revoked: start each again on next use; the window's offsets are
        not committed (its partitions may be another consumer's now)."""
        self._cursor.forget()
        self._holes.clear()
        self._folded = {}
