"""Faust's Kafka consumer, handing each fetched message over without two tasks per message.

Faust's drain loop (``Consumer._drain_messages``) delivers every fetched message with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: the delivery races the
flow suspension, so that a rebalance can abandon a delivery that waits, for instance on a full
buffer. mode's ``wait_first`` wraps each of the two in a task, adds two more for the service's
stopped and crashed events, waits on all four and cancels the losers: a few tasks per message,
although a delivery to an inbox (streams/inbox.py) nearly always finishes without waiting.

:class:`InlineDeliveryConsumer` runs such a delivery inline, up to its first suspension, as
Python 3.12's eager tasks do. If it finishes there, no task is made. If it suspends, the rest of
it runs as a task raced against the flow suspension exactly as Faust races it. A flow already
suspended, or any other call of ``wait_first``, goes to mode's own. Faust's drain loop itself
(fetching, read offsets, gaps, commits) is left as it is: only the race is shortened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import CoroutineType
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds

_EVENT_WAIT = asyncio.Event.wait.__code__


def run_eagerly(
    coro: Coroutine[Any, Any, Any], error: BaseException | None = None
) -> tuple[bool, Any]:
    """Run ``coro`` (resumed, or with ``error`` thrown in where it waits) up to its next
    suspension: ``(True, its result)`` if it finished, else ``(False, what it suspended on)``:
    the future it awaits, or None for a bare yield. What it raises propagates."""
    try:
        waiting = coro.send(None) if error is None else coro.throw(error)
    except StopIteration as stop:
        return True, stop.value
    if waiting is not None:
        # what a task does with a future its coroutine yields: the task now waits on it
        waiting._asyncio_future_blocking = False
    return False, waiting


async def resume(coro: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    """Drive ``coro`` on from its suspension on ``waiting`` (a future, or None for a bare
    yield), as a task drives its coroutine: wait, then resume it; a future's outcome reaches
    the coroutine through the future's own ``__await__``, and this task's cancellation is
    thrown into the coroutine where it waits."""
    while True:
        error = None
        try:
            await (asyncio.sleep(0) if waiting is None else waiting)
        except BaseException as exc:
            if waiting is None or not waiting.done():
                error = exc  # this task was cancelled while the future is still pending
        done, outcome = run_eagerly(coro, error)
        if done:
            return outcome
        waiting = outcome


def _race_of(
    coros: tuple[WaitArgT, ...],
) -> tuple[CoroutineType[Any, Any, Any], CoroutineType[Any, Any, Any], asyncio.Event] | None:
    """``(delivery, event.wait(), event)`` of ``wait_first(delivery, event.wait())``, the drain
    loop's call, else None."""
    if len(coros) != 2:
        return None
    delivery, race = coros
    if type(delivery) is not CoroutineType or type(race) is not CoroutineType:
        return None
    if race.cr_code is not _EVENT_WAIT or race.cr_frame is None:
        return None
    event = race.cr_frame.f_locals.get("self")
    return (delivery, race, event) if isinstance(event, asyncio.Event) else None


class InlineDeliveryConsumer(faust_aiokafka.Consumer):
    """The aiokafka driver's consumer, delivering each message inline where it can."""

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        if timeout is not None:
            return await super().wait_first(*coros, timeout=timeout)
        found = _race_of(coros)
        if found is None or found[2].is_set():
            return await super().wait_first(*coros)
        delivery, race, _event = found
        try:
            done, outcome = run_eagerly(delivery)
        except BaseException:
            race.close()
            raise
        if done:
            race.close()
            if self._stopped.is_set() or self._crashed.is_set():
                return WaitResults([], [], True)
            return WaitResults([delivery], [outcome], False)
        return await super().wait_first(resume(delivery, outcome), race)


class InlineDeliveryTransport(faust_aiokafka.Transport):
    """The aiokafka transport whose consumer is :class:`InlineDeliveryConsumer`."""

    Consumer = InlineDeliveryConsumer
