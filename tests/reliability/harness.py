"""The project's real processes under a reliability scenario: workers, a sender, paced input.

A scenario replays seeded events in event time (``--clock event``: the workers take time only
from the ticks in ``cart-events``), so the pure core (recovery.simulate) fed the same events
says exactly which touches the stream must emit. The input is paced over some seconds of wall
time, so that a kill, a new worker or a redaction lands while records are in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import orjson

from bench.events import Mix, generate
from bus.kafka import producer, reader
from cartbands.processes import spawn, stop, tail
from cartbands.replay import replay
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch
from recovery.ids import checkout_key
from recovery.simulate import DAY, Simulation, boundaries, drain_ticks, simulate
from schemas.codec import dumps
from streams.app import code_secret
from tests.conftest import Workers
from tests.pipeline.helpers import wire, without_holdout

Timed = list[tuple[float, dict[str, Any]]]
# ``replay``'s tick step: the core is fed the same boundaries
TICK_STEP = 300.0
# seconds without a new touch after which the missing ones count as lost
STALL = 25.0


def seeded_events(count: int, seed: int, **mix: Any) -> Timed:
    """``count`` generated cart events (bench.events: orders, repeat shoppers, guests) in time
    order; a higher abandonment rate than the benchmark's so that most carts get touches."""
    shape = Mix(**{"stores": 4, "abandon_rate": 0.5, **mix})
    return timed(generate(count, seed, shape))


def timed(events: Iterable[dict[str, Any]]) -> Timed:
    pairs = [(epoch(e["occurred_at"], "occurred_at"), e) for e in events]
    return sorted(pairs, key=lambda pair: pair[0])


def policy_file(tmp_path: Path) -> Path:
    """The default policy without a control group: every abandoned cart gets its sequence."""
    return without_holdout(DEFAULT_POLICY, tmp_path / "policy.yaml")


def core_run(events: Timed, policy: Path) -> Simulation:
    """What the pure core decides for ``events`` (the stream must emit exactly its touches)."""
    return simulate(events, load_policy(policy), code_secret)


@dataclass
class Recording(Simulation):
    """The core, keeping the ``cart_abandoned`` records stage A hands to stage B."""

    abandoned: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def shopper_events(self, records: list[Any], key: str | None = None) -> None:
        for record in records:
            sent = wire(record)  # as stage B reads it from the topic
            if sent.get("type") == "cart_abandoned":
                self.abandoned.append((sent["shopper"], sent))
        super().shopper_events(records, key)


def recorded_run(events: Timed, policy: Path) -> Recording:
    """:func:`recovery.simulate.simulate` on a :class:`Recording` core (same boundaries)."""
    sim = Recording(load_policy(policy), code_secret)
    watermark = events[0][0] if events else 0.0
    for tick_at, chunk in boundaries(events, TICK_STEP):
        if tick_at is not None:
            sim.tick(tick_at)
            watermark = tick_at
        sim.events(chunk)
    for now in drain_ticks(watermark, events[-1][0] if events else watermark, 8 * DAY):
        sim.tick(now)
    return sim


def kill(process: Popen[bytes]) -> None:
    """kill -9: no shutdown handler runs, nothing is flushed or committed."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


class Sender:
    """``cartbands sender --channel all`` delivering to an outbox directory."""

    def __init__(self, pool: Workers, policy: Path) -> None:
        self.pool = pool
        self.outbox = pool.tmp_path / "outbox"
        self.args = [
            "sender", "--channel", "all", "--broker", pool.broker.url,
            "--policy", str(policy), "--partitions", str(pool.partitions),
            "--topic-prefix", pool.names.prefix, "--app-id", pool.app_id,
            "--outbox-dir", str(self.outbox), "--outbox-only", "--max-lateness", "off",
        ]  # fmt: skip
        self.processes: list[tuple[Popen[bytes], Path]] = []

    def start(self) -> Popen[bytes]:
        log = self.pool.tmp_path / f"sender-{len(self.processes)}.log"
        process = spawn(self.args, log)
        self.processes.append((process, log))
        return process

    @property
    def current(self) -> Popen[bytes]:
        return self.processes[-1][0]

    def lines(self) -> list[dict[str, Any]]:
        """Every message the senders delivered (one outbox line each), all channels. A line
        a running sender is still writing (no newline yet) is left for the next read."""
        out: list[dict[str, Any]] = []
        for path in sorted(self.outbox.glob("*.ndjson")) if self.outbox.exists() else []:
            data = path.read_bytes()
            complete = data[: data.rfind(b"\n") + 1]
            out += [orjson.loads(line) for line in complete.splitlines() if line]
        return out

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{tail(log)}" for _, log in self.processes)

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.processes)

    def stop_all(self) -> None:
        for process, _ in self.processes:
            stop(process)


async def paced_replay(
    pool: Workers,
    events: Timed,
    seconds: float,
    progress: Callable[[float], object] | None = None,
    extra: Mapping[str, list[dict[str, Any]]] | None = None,
    side: Mapping[str, list[tuple[str, str, dict[str, Any]]]] | None = None,
) -> None:
    """Replay ``events`` (and the ticks between them) into ``cart-events`` over about
    ``seconds`` of wall time; ``progress(share of the input sent)`` runs after each chunk.

    A fault is injected from ``progress``, in this thread: the processes are spawned with a
    parent-death signal, which Linux sends when the spawning *thread* ends. ``extra``: event
    id -> more deliveries sent right after that event's chunk (repeats, stale copies);
    ``side``: event id -> ``(topic, key, record)`` sent to other topics after its chunk."""
    chunks = max(1, len({int(at // TICK_STEP) for at, _ in events}))
    pause = seconds / chunks
    sent = 0
    topic = pool.names.cart_events
    async with producer(pool.broker.bootstrap) as out:

        async def deliver(chunk: list[dict[str, Any]]) -> None:
            nonlocal sent
            chunk = [*chunk, *(x for e in chunk for x in (extra or {}).get(e["event_id"], ()))]
            futures = [
                await out.send(topic, key=checkout_key(e["store"], e["checkout"]).encode(),
                               value=dumps(e))
                for e in chunk
            ]  # fmt: skip
            for event in chunk:
                for other, key, record in (side or {}).get(event["event_id"], ()):
                    futures.append(await out.send(other, key=key.encode(), value=dumps(record)))
            await asyncio.gather(*futures)
            sent += len(chunk)
            sent = min(sent, len(events))
            if progress is not None:
                progress(sent / len(events))
            await asyncio.sleep(pause)

        await replay(pool.broker.bootstrap, topic, events, deliver=deliver)


def send_records(pool: Workers, topic: str, records: Iterable[tuple[str, Any]]) -> None:
    """Produce ``(key, value)`` records and wait for their acknowledgements."""

    async def run() -> None:
        async with producer(pool.broker.bootstrap) as out:
            futures = [await out.send(topic, key=k.encode(), value=dumps(v)) for k, v in records]
            await asyncio.gather(*futures)

    asyncio.run(run())


def read_touches(
    pool: Workers,
    wanted: set[str],
    *,
    timeout: float = 90.0,
    idle: float = 4.0,
    alive: Callable[[], str | None] | None = None,
) -> list[dict[str, Any]]:
    """Every touch command copy on the touch topics, read until the wanted touch ids are all
    there, then until ``idle`` seconds pass with nothing new, so that extra touches (or late
    repeats) show too; short of them, until ``STALL`` seconds pass with nothing new (a worker
    restart takes less) or ``timeout``. Once ``alive`` gives a reason (every worker exited),
    only until ``idle`` seconds pass with nothing new."""
    return asyncio.run(_read(pool.broker.bootstrap, pool.names.touch_topics, wanted,
                             "touch_id", timeout, idle, alive))  # fmt: skip


def read_results(pool: Workers, wanted: set[str], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every ``touch-results`` record, read until each wanted touch id has one."""
    return asyncio.run(_read(pool.broker.bootstrap, [pool.names.touch_results], wanted,
                             "touch_id", timeout, 1.0, None))  # fmt: skip


async def _read(
    bootstrap: str,
    topics: list[str],
    wanted: set[str],
    field: str,
    timeout: float,
    idle: float,
    alive: Callable[[], str | None] | None,
) -> list[dict[str, Any]]:
    consumer = reader(bootstrap, topics)
    await consumer.start()
    seen: list[dict[str, Any]] = []
    ids: set[Any] = set()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    gone = False  # nothing more will come: read what is there, no longer wait for the rest
    try:
        while time.monotonic() < deadline:
            gone = gone or (alive is not None and alive() is not None)
            quiet = time.monotonic() - last
            if quiet > (idle if wanted <= ids or gone else STALL):
                break
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                for message in messages:
                    value = orjson.loads(message.value) if message.value is not None else None
                    if isinstance(value, dict):
                        seen.append(value)
                        ids.add(value.get(field))
                        last = time.monotonic()
    finally:
        await consumer.stop()
    return seen


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()
