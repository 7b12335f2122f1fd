"""Replay canonical events with their own timestamps: event time instead of the wall clock.

Events are sent in time order, batched per partition (one message per partition per chunk), and
before each event that moves the watermark past the next tick step, a ``tick(watermark)`` goes
to every partition of ``cart-events``. A worker started with ``--clock event`` takes time only
from those ticks, so a month of history replays in seconds with the same decisions as live,
and replaying the same file twice gives the same touches, ids and times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from bus.kafka import producer
from bus.partitioning import key_partition
from recovery.checkouts import BadEvent, epoch
from recovery.clock import tick
from recovery.ids import checkout_key
from recovery.simulate import boundaries, drain_ticks
from schemas.codec import dumps


class ReplayError(ValueError):
    """A replay file that cannot be replayed (the message names the line)."""


@dataclass(frozen=True)
class ReplayStats:
    events: int
    messages: int
    ticks: int
    first: float
    last: float
    watermark: float
    seconds: float


def read_ndjson(path: Path) -> list[tuple[float, dict[str, Any]]]:
    """``(event time, event)`` for every line, sorted by time (stable for equal times)."""
    events: list[tuple[float, dict[str, Any]]] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
                if not isinstance(event, dict):
                    raise ReplayError(f"{path}:{number}: expected a JSON object per line")
                at = epoch(event.get("occurred_at"), "occurred_at")
            except (orjson.JSONDecodeError, BadEvent) as exc:
                raise ReplayError(f"{path}:{number}: {exc}") from exc
            events.append((at, event))
    events.sort(key=lambda pair: pair[0])
    return events


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible); ``60x`` -> 60.0 (event time runs 60x real time)."""
    value = text.strip().lower()
    if value == "max":
        return None
    if value.endswith("x"):
        value = value[:-1]
    try:
        speed = float(value)
    except ValueError as exc:
        raise ReplayError(f"--speed: expected 'max' or a factor like '60x', not {text!r}") from exc
    if speed <= 0:
        raise ReplayError("--speed: the factor must be positive")
    return speed


async def replay(
    bootstrap: str,
    topic: str,
    events: list[tuple[float, dict[str, Any]]],
    *,
    tick_step: timedelta = timedelta(minutes=5),
    drain: timedelta = timedelta(days=8),
    speed: float | None = None,
    batch_size: int = 500,
    deliver: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
) -> ReplayStats:
    """Send ``events`` and their ticks to ``topic``; then tick on for ``drain`` after the last.

    With ``deliver``, events do not go to the broker from here: each run of events between two
    ticks is handed to ``deliver`` (e.g. posted to the ingest gateway), which must return only
    once the broker holds them, so that every event still precedes the next tick.
    """
    started = time.monotonic()
    step = tick_step.total_seconds()
    messages = ticks = 0
    async with producer(bootstrap) as out:
        partitions = sorted(await out.partitions_for(topic))
        futures: list[Any] = []

        async def send(value: Any, partition: int, key: bytes | None = None) -> None:
            nonlocal messages
            futures.append(await out.send(topic, value=dumps(value), key=key, partition=partition))
            messages += 1

        async def send_ticks(now: float) -> None:
            nonlocal ticks
            for partition in partitions:
                await send(tick(now), partition)
            ticks += 1

        first = events[0][0] if events else 0.0
        watermark = first
        for tick_at, chunk in boundaries(events, step):
            if tick_at is not None:
                await _pace(speed, started, first, tick_at)
                await send_ticks(tick_at)
                watermark = tick_at
            if deliver is not None:
                await asyncio.gather(*futures)  # the tick is on the broker before the events
                futures.clear()
                for start in range(0, len(chunk), batch_size):
                    await deliver(chunk[start : start + batch_size])
                continue
            by_partition: dict[int, list[dict[str, Any]]] = {}
            for event in chunk:
                key = checkout_key(str(event.get("store")), str(event.get("checkout"))).encode()
                partition = key_partition(key, partitions)
                by_partition.setdefault(partition, []).append(event)
            for partition, batch in by_partition.items():
                for start in range(0, len(batch), batch_size):
                    await send({"batch": batch[start : start + batch_size]}, partition)
        last = events[-1][0] if events else first
        # Decisions are taken at each touch's own due time, so after the last event a tick a
        # day is enough to let every remaining sequence run out.
        for now in drain_ticks(watermark, last, drain.total_seconds()):
            await _pace(speed, started, first, now)
            await send_ticks(now)
            watermark = now
        await asyncio.gather(*futures)
    return ReplayStats(
        events=len(events),
        messages=messages,
        ticks=ticks,
        first=first,
        last=events[-1][0] if events else first,
        watermark=watermark,
        seconds=time.monotonic() - started,
    )


async def send_ticks(bootstrap: str, topic: str, times: Iterable[float]) -> int:
    """Advance event time: a tick per time to every partition of ``topic``."""
    sent = 0
    async with producer(bootstrap) as out:
        partitions = sorted(await out.partitions_for(topic))
        futures = []
        for now in times:
            for partition in partitions:
                futures.append(await out.send(topic, value=dumps(tick(now)), partition=partition))
            sent += 1
        await asyncio.gather(*futures)
    return sent


async def _pace(speed: float | None, started: float, first: float, at: float) -> None:
    if speed is None:
        return
    delay = (at - first) / speed - (time.monotonic() - started)
    if delay > 0:
        await asyncio.sleep(delay)


def write_ndjson(path: Path, events: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("wb") as handle:
        for event in events:
            handle.write(dumps(event) + b"\n")
            count += 1
    return count
