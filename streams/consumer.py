"""Faust's Kafka consumer, handing each fetched message to the streams without two tasks.

Faust's ``Consumer._drain_messages`` delivers every fetched message with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: it wraps the delivery
and a wait on the flow-suspension event in two tasks and waits for the first to finish, so a
rebalance, which suspends the flow, can abandon a delivery blocked on a full stream buffer.
That is two tasks, an ``asyncio.wait`` and their cancellation per message, although a delivery
almost never blocks: the conductor puts the event into the stream's buffer without waiting
unless flow control is suspended or the buffer is full.

:class:`EagerConsumer` runs the delivery's coroutine inline up to its first suspension (as
Python 3.12's eager tasks do). If it finishes there, as it does for nearly every message, no
task is made; if it suspends, the rest of it runs as a task raced against the flow suspension
exactly as Faust does. Everything else (fetching, gaps, acks, commits, rebalances) is Faust's.
The loop below is Faust 0.15's ``Consumer._drain_messages`` with that one call replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from types import CoroutineType
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service, ServiceT


async def _resume(coro: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    """Drive ``coro`` on from where it suspended on ``waiting`` (the future it yielded, or None
    for a bare yield), as a task would: wait for it, then resume the coroutine with ``send(None)``,
    so that the future's own ``__await__`` returns its result or raises its exception."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await waiting
        except BaseException as exc:
            if waiting is None or not waiting.done():  # this task was cancelled, not the future
                try:
                    waiting = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                if waiting is not None:
                    waiting._asyncio_future_blocking = False
                continue
        try:
            waiting = coro.send(None)
        except StopIteration as stop:
            return stop.value
        if waiting is not None:
            waiting._asyncio_future_blocking = False


def eager(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro`` to its first suspension: (True, None) if it finished, else (False, what it
    suspended on). An exception it raises propagates."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return True, None
    if waiting is not None:
        # what a task does with a future its coroutine yields: it is now the task's to wait on
        waiting._asyncio_future_blocking = False
    return False, waiting


class EagerConsumer(faust_aiokafka.Consumer):
    """The aiokafka driver's consumer with an eager delivery of each message."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspended = self.suspend_flow.is_set

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset:
                                acks_enabled = acks_enabled_for(message.topic)
                                if acks_enabled:
                                    await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            delivery = callback(message)
                            if suspended() or type(delivery) is not CoroutineType:
                                # Faust's way (a suspended flow wins the race at once)
                                await self.wait_first(delivery, self.suspend_flow.wait())
                            else:
                                done, waiting = eager(delivery)
                                if not done:
                                    await self.wait_first(
                                        _resume(delivery, waiting), self.suspend_flow.wait()
                                    )
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    unset_flag(flag_consumer_fetching)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)


class EagerTransport(faust_aiokafka.Transport):
    """The aiokafka transport whose consumer is :class:`EagerConsumer`."""

    Consumer = EagerConsumer
