"""The worker's Faust shell: the eager delivery of a message and the lean monitor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config.policyfile import load_policy
from streams.app import WorkerApp, create_app
from streams.consumer import EagerConsumer, _resume, eager
from streams.monitor import OffsetsMonitor


async def _blocked(future: asyncio.Future[Any], queue: asyncio.Queue[int]) -> Any:
    await queue.put(1)  # does not suspend: the queue has room
    value = await future
    await asyncio.sleep(0)  # a bare yield
    return value


async def _awaiting(future: asyncio.Future[Any]) -> Any:
    return await future


async def test_eager_finishes_without_a_task() -> None:
    async def quick() -> int:
        await asyncio.Queue().put(1)
        return 1

    assert eager(quick()) == (True, None)


async def test_a_suspended_delivery_resumes_as_a_task() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    coro = _blocked(future, asyncio.Queue())
    done, waiting = eager(coro)
    assert not done and waiting is future
    task = asyncio.ensure_future(_resume(coro, waiting))
    await asyncio.sleep(0.01)
    assert not task.done()
    future.set_result(5)
    assert await task == 5


async def test_a_failure_or_cancellation_reaches_the_delivery() -> None:
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[Any] = loop.create_future()
    coro = _awaiting(failed)
    task = asyncio.ensure_future(_resume(coro, eager(coro)[1]))
    await asyncio.sleep(0)
    failed.set_exception(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        await task
    pending: asyncio.Future[Any] = loop.create_future()
    coro = _awaiting(pending)
    task = asyncio.ensure_future(_resume(coro, eager(coro)[1]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pending.cancelled()


def test_the_app_uses_the_lean_shell() -> None:
    pipeline = create_app(broker="kafka://127.0.0.1:9", policies=load_policy())
    app = pipeline.app
    assert isinstance(app, WorkerApp)
    assert isinstance(app.monitor, OffsetsMonitor)
    assert app.transport.Consumer is EagerConsumer


def test_the_monitor_keeps_what_the_lag_gauge_reads() -> None:
    monitor = OffsetsMonitor()
    monitor.on_message_in("tp", 41, object())
    monitor.on_tp_commit({"tp": 40})
    assert monitor.tp_read_offsets == {"tp": 41}
    assert monitor.tp_committed_offsets == {"tp": 40}
