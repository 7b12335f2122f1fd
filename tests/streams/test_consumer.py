"""streams.consumer: Faust's drain loop hands a message over inline where it can."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.types import TP, Message
from mode import Service

from config.policyfile import load_policy
from streams.app import WorkerApp, create_app
from streams.consumer import InlineDeliveryConsumer, resume, run_eagerly
from streams.supervision import ExitingApp


@pytest.fixture
async def consumer() -> AsyncIterator[InlineDeliveryConsumer]:
    app = create_app(broker="kafka://127.0.0.1:9", policies=load_policy()).app
    found = app.consumer
    assert isinstance(found, InlineDeliveryConsumer)
    # a worker's consumer runs on the loop the worker runs: mode's waits schedule on it
    found.loop = asyncio.get_running_loop()
    yield found


class Delivery:
    """A delivery as the conductor makes it: records the task it ran in, may wait on a gate."""

    def __init__(self, gate: asyncio.Future[Any] | None = None) -> None:
        self.gate = gate
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.cancelled = False

    async def __call__(self, value: int) -> int:
        self.tasks.append(asyncio.current_task())
        await asyncio.Lock().acquire()  # uncontended, as the conductor's: no suspension
        if self.gate is not None:
            try:
                await self.gate
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            self.tasks.append(asyncio.current_task())
        return value * 2


async def test_a_delivery_that_does_not_wait_runs_inline(
    consumer: InlineDeliveryConsumer,
) -> None:
    delivery = Delivery()
    flow = asyncio.Event()
    coro = delivery(21)
    found = await consumer.wait_first(coro, flow.wait())
    assert found.results == [42] and found.done == [coro] and not found.stopped
    assert delivery.tasks == [asyncio.current_task()]


async def test_a_delivery_that_waits_finishes_as_a_task(consumer: InlineDeliveryConsumer) -> None:
    gate: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    delivery = Delivery(gate)
    flow = asyncio.Event()
    waiting = asyncio.ensure_future(consumer.wait_first(delivery(5), flow.wait()))
    await asyncio.sleep(0.01)
    # its first part ran in the task that called wait_first (the drain loop's), the rest not
    assert not waiting.done() and delivery.tasks == [waiting]
    gate.set_result(None)
    found = await asyncio.wait_for(waiting, 1.0)
    assert found.results == [10] and not found.stopped
    assert delivery.tasks[1] not in (None, waiting)


async def test_a_suspended_flow_abandons_a_delivery_that_waits(
    consumer: InlineDeliveryConsumer,
) -> None:
    gate: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    delivery = Delivery(gate)
    flow = asyncio.Event()
    waiting = asyncio.ensure_future(consumer.wait_first(delivery(5), flow.wait()))
    await asyncio.sleep(0.01)
    flow.set()
    found = await asyncio.wait_for(waiting, 1.0)
    await asyncio.sleep(0)
    assert found.results == [True] and delivery.cancelled and gate.cancelled()


async def test_with_the_flow_suspended_delivery_is_raced_as_faust_does(
    consumer: InlineDeliveryConsumer,
) -> None:
    delivery = Delivery()
    flow = asyncio.Event()
    flow.set()
    await consumer.wait_first(delivery(1), flow.wait())
    assert delivery.tasks and delivery.tasks[0] is not asyncio.current_task()


async def test_other_waits_go_to_mode(consumer: InlineDeliveryConsumer) -> None:
    for timeout in (None, 1.0):
        delivery = Delivery()
        found = await consumer.wait_first(delivery(1), timeout=timeout)
        assert found.results == [2] and delivery.tasks[0] is not asyncio.current_task()
    delivery, flow = Delivery(), asyncio.Event()
    await consumer.wait_first(delivery(1), flow.wait(), timeout=1.0)
    assert delivery.tasks[0] is not asyncio.current_task()


async def test_a_failing_delivery_raises_and_leaves_no_coroutine_unawaited(
    consumer: InlineDeliveryConsumer,
) -> None:
    async def failing() -> None:
        raise ValueError("bad message")

    flow = asyncio.Event()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="bad message"):
            await consumer.wait_first(failing(), flow.wait())
        await consumer.wait_first(Delivery()(1), flow.wait())
        gc.collect()
    assert not [w for w in seen if "never awaited" in str(w.message)]


async def test_a_stopped_consumer_reports_it(consumer: InlineDeliveryConsumer) -> None:
    consumer._stopped.set()
    found = await consumer.wait_first(Delivery()(1), asyncio.Event().wait())
    assert found.stopped and found.done == []


async def test_resume_passes_results_failures_and_cancellation_through() -> None:
    loop = asyncio.get_running_loop()

    async def awaiting(future: asyncio.Future[Any]) -> Any:
        value = await future
        await asyncio.sleep(0)  # a bare yield
        return value

    ready: asyncio.Future[Any] = loop.create_future()
    coro = awaiting(ready)
    done, waiting = run_eagerly(coro)
    assert not done and waiting is ready
    task = asyncio.ensure_future(resume(coro, waiting))
    await asyncio.sleep(0.01)
    assert not task.done()
    ready.set_result(5)
    assert await task == 5

    failed: asyncio.Future[Any] = loop.create_future()
    coro = awaiting(failed)
    task = asyncio.ensure_future(resume(coro, run_eagerly(coro)[1]))
    await asyncio.sleep(0)
    failed.set_exception(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        await task

    pending: asyncio.Future[Any] = loop.create_future()
    coro = awaiting(pending)
    task = asyncio.ensure_future(resume(coro, run_eagerly(coro)[1]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pending.cancelled()


def test_run_eagerly_returns_what_a_finished_coroutine_returns() -> None:
    async def quick() -> str:
        return "done"

    assert run_eagerly(quick()) == (True, "done")


def test_the_worker_app_uses_the_inline_delivery_on_kafka_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for scheme in ("kafka", "aiokafka"):
        app = create_app(broker=f"{scheme}://127.0.0.1:9", policies=load_policy()).app
        assert isinstance(app, WorkerApp)
        assert app.transport.Consumer is InlineDeliveryConsumer
    # another driver keeps its own consumer
    monkeypatch.setattr(ExitingApp, "_new_transport", lambda self: "its own transport")
    other = create_app(broker="confluent://127.0.0.1:9", policies=load_policy()).app
    assert other.transport == "its own transport"


async def test_faust_drain_loop_hands_each_message_over_inline(
    consumer: InlineDeliveryConsumer,
) -> None:
    """Faust's own ``_drain_messages``: its call is the one delivered inline."""
    fetcher = Service()
    messages = [Message("t", 0, offset, 0.0, 0, None, b"k", b"v", None) for offset in range(3)]
    ran_in: list[tuple[int, asyncio.Task[Any] | None]] = []

    async def callback(message: Message) -> None:
        ran_in.append((message.offset, asyncio.current_task()))

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for message in messages:
            yield message.tp, message
        fetcher._stopped.set()

    consumer.callback = callback
    consumer.getmany = getmany  # type: ignore[method-assign]
    drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
    await asyncio.wait_for(drain, 2.0)
    assert ran_in == [(offset, drain) for offset in range(3)]
