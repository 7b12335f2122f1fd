"""What parts of Faust's shell cost per message, in process (no broker).

**Delivery.** Faust's consumer hands each fetched message to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())`` (mode's
``Service.wait_first``: a task for each of the two, two more for the service's stopped and
crashed events, an ``asyncio.wait``, the losers cancelled). The worker's consumer
(streams/consumer.py) runs the delivery inline up to its first suspension instead. This times
both on uvloop, as the worker runs, for a delivery that does what Faust's conductor does when
the stream's buffer has room (an uncontended ``asyncio.Lock``, a flow-control check, a
``put_nowait``).

**Sensors.**
Faust calls ``app.sensors`` (a delegate over every sensor, ``app.monitor`` always among them)
on every message: when it is fetched (``on_message_in``), when a stream hands its event out
and takes it back (``on_stream_event_in`` / ``_out``) and when it is acknowledged
(``on_message_out``). This times those four calls per message through the delegate of a real
(unstarted) Faust app, with Faust's default Monitor and with the worker's OffsetsMonitor
(streams/monitor.py), the same fake partition, message, stream and event for both.

    python -m bench.faust_shell [--messages 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import faust
import uvloop
from faust.sensors import Monitor
from faust.types import TP
from faust.types.tuples import Message
from mode import Service

from bench.harness import table
from streams.consumer import _resume, eager
from streams.monitor import OffsetsMonitor


class _Owner:
    def __str__(self) -> str:
        return "agent"


class _Stream:
    task_owner = _Owner()

    def __str__(self) -> str:
        return "stream"


def hooks_per_message(monitor_class: type[Monitor], messages: int) -> float:
    """Seconds of CPU per message for the four per-message sensor calls."""
    app = faust.App("faust-shell-bench", Monitor=monitor_class, web_enabled=False)
    app.sensors.add(app.monitor)
    sensors = app.sensors
    tp = TP("cart-events", 0)
    stream: Any = _Stream()
    message = Message("cart-events", 0, 0, 0.0, 0, None, b"k", b"v", None, 1, 1, tp=tp)
    event: Any = object()
    on_in, on_event_in = sensors.on_message_in, sensors.on_stream_event_in
    on_event_out, on_out = sensors.on_stream_event_out, sensors.on_message_out
    started = time.process_time()
    for offset in range(messages):
        on_in(tp, offset, message)
        state = on_event_in(tp, offset, stream, event)
        on_event_out(tp, offset, stream, event, state)
        on_out(tp, offset, message)
    return (time.process_time() - started) / messages


async def _delivery_per_message(messages: int, how: str) -> float:
    service = Service()
    suspend_flow = asyncio.Event()
    lock = asyncio.Lock()
    queue: asyncio.Queue[int] = asyncio.Queue()
    resume = asyncio.Event()
    resume.set()

    async def deliver(message: int) -> None:
        async with lock:
            pass
        if not resume.is_set():
            await resume.wait()
        queue.put_nowait(message)

    started = time.process_time()
    for message in range(messages):
        if how == "faust":
            await service.wait_first(deliver(message), suspend_flow.wait())
        else:
            delivery = deliver(message)
            done, waiting = eager(delivery)
            if not done:
                await service.wait_first(_resume(delivery, waiting), suspend_flow.wait())
        if queue.qsize() >= 1024:
            while not queue.empty():
                queue.get_nowait()
    return (time.process_time() - started) / messages


def delivery_per_message(messages: int, how: str) -> float:
    """Seconds of CPU per message for handing it to a stream's buffer."""
    return uvloop.run(_delivery_per_message(messages, how))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faust_shell")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    best: dict[str, float] = {}
    delivery: dict[str, float] = {}
    for _ in range(args.repeat):  # alternated, best of each
        for name, cls in (("faust.sensors.Monitor", Monitor), ("OffsetsMonitor", OffsetsMonitor)):
            found = hooks_per_message(cls, args.messages)
            best[name] = min(best.get(name, found), found)
        for how in ("faust", "eager"):
            found = delivery_per_message(args.messages, how)
            delivery[how] = min(delivery.get(how, found), found)
    labels = {
        "faust": "Faust: wait_first(callback(message), suspend_flow.wait())",
        "eager": "streams/consumer.py: eager(callback(message))",
    }
    base = delivery["faust"]
    rows = [[labels[how], f"{sec * 1e6:.2f}", f"{sec / base:.2f}"] for how, sec in delivery.items()]
    print("handing a message to a stream whose buffer has room, CPU, uvloop, best of each")
    print(table(("delivery", "us per message", "/ Faust's"), rows))
    print()
    base = best["faust.sensors.Monitor"]
    rows = [[name, f"{sec * 1e6:.2f}", f"{sec / base:.2f}"] for name, sec in best.items()]
    print("Faust's four per-message sensor calls through app.sensors, CPU, best of each")
    print(table(("app.monitor", "us per message", "/ default"), rows))


if __name__ == "__main__":
    main()
