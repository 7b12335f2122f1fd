"""Follow ``shopper-events`` (no consumer group: every sender reads all partitions) into a
:class:`~senders.suppression.SuppressionView`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.batches import records_of
from schemas.codec import loads
from senders.suppression import SuppressionView
from senders.topics import partitions_of

log = logging.getLogger(__name__)


class ShopperEventsFollower:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        view: SuppressionView,
        listeners: tuple[Callable[[Any], None], ...] = (),
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.view = view
        self.listeners = listeners  # also told of every record (e.g. plan ends, for codes)
        self.applied = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._tps: list[TopicPartition] = []
        self._waiters: list[asyncio.Event] = []

    async def start(self, timeout: float = 60.0) -> None:
        """Read up to the end of every partition (fetch high-water marks), then keep following.

        Best effort: if catching up takes longer than ``timeout``, sending starts anyway (the
        stage-B pipeline remains the first line of defence) and a warning is logged.
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        deadline = time.monotonic() + timeout
        tps = await partitions_of(self.bootstrap, self.topic, timeout)
        self._tps = tps
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while time.monotonic() < deadline:
            await self._poll(consumer)
            if await self._at_end(consumer, tps):
                break
        else:
            log.warning("not caught up on %s after %.0fs; sending anyway", self.topic, timeout)
        log.info("followed %s: %d relevant records", self.topic, self.applied)
        self._task = asyncio.create_task(self._follow(consumer), name="shopper-events")

    @staticmethod
    async def _at_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        for tp in tps:
            highwater = consumer.highwater(tp)
            if highwater is None or await consumer.position(tp) < highwater:
                return False
        return True

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            for record in records:
                if record.value is None:
                    continue
                try:
                    value = loads(record.value)
                except ValueError:
                    continue  # stage B dead-letters what it cannot read; nothing to learn here
                # stage A sends a partition's records as one {"batch": [...]} message: the
                # abandonments a redacted shopper's later touches are matched against among them
                for each in records_of(value):
                    if self.view.apply(each):
                        self.applied += 1
                    for listener in self.listeners:
                        listener(each)

    async def sync(self, timeout: float) -> bool:
        """Wait until what was on the topic when called has been read (a fetch that began
        after the call reached every partition's end); False after ``timeout`` seconds."""
        if self._task is None:
            return False
        waiter = asyncio.Event()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.remove(waiter)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                waiting = list(self._waiters)
                await self._poll(consumer)
                if waiting and await self._at_end(consumer, self._tps):
                    for waiter in waiting:
                        waiter.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following %s failed; retrying in 1s", self.topic)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
