"""Shared benchmark machinery: load a topic, read it raw, watch a group's commits, count CPU.

How throughput is measured (the same for every consumer group, ours or a reference):
the input is preloaded, the consumer is started, and a watcher polls the group's committed
offsets (``consumer.committed()``, which works on tansu) against the end of every partition.
The end is what was read back from the topic, not ``end_offsets()`` (wrong on tansu). The rate
is taken from the first commit that shows progress to the last commit seen before every end is
reached (see Progress), so process start-up, the group join (tansu waits session_timeout/2) and
the wait for the final commit are left out; the wall time including start-up is reported beside
it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.kafka import producer
from bus.partitioning import key_partition
from cartbands.broker import _die_with_parent
from recovery.checkouts import epoch
from recovery.clock import tick
from recovery.ids import checkout_key
from recovery.simulate import boundaries
from schemas.codec import dumps

ROOT = Path(__file__).resolve().parent.parent
BATCH_FORMATS = ("array", "object")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BenchError(RuntimeError):
    """A benchmark could not complete (a process died, a wait timed out)."""


def quiet_clients() -> None:
    """aiokafka logs refused connections while the broker starts and groups form; failures
    that matter end the benchmark with a BenchError instead."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


# --- the input --------------------------------------------------------------------------------


def encode_batch(events: Sequence[dict[str, Any]], fmt: str) -> bytes:
    """Several events in one message: a JSON array, or ``{"batch": [...]}``."""
    if fmt == "array":
        return dumps(list(events))
    if fmt == "object":
        return dumps({"batch": list(events)})
    raise ValueError(f"unknown batch format {fmt!r} (expected one of {BATCH_FORMATS})")


def _is_event(record: Any) -> bool:
    return not (isinstance(record, dict) and record.get("type") == "tick")


def events_in(value: Any) -> int:
    """How many events one decoded message carries (either wire format; ticks are not events)."""
    if isinstance(value, list):
        return sum(1 for record in value if _is_event(record))
    if isinstance(value, dict) and isinstance(value.get("batch"), list):
        return sum(1 for record in value["batch"] if _is_event(record))
    return 1 if _is_event(value) else 0


def partition_of(key: str, partitions: int) -> int:
    """The partition aiokafka's (and Faust's) default partitioner picks for ``key``."""
    return key_partition(key.encode(), range(partitions))


def partition_records(
    events: Sequence[dict[str, Any]], partitions: int, tick_step: float | None
) -> list[list[dict[str, Any]]]:
    """Each partition's records in order; with ``tick_step`` (event-time seconds), a
    ``tick(watermark)`` goes to every partition whenever event time passes the next step,
    exactly as ``cartbands replay`` does (recovery.simulate.boundaries)."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(partitions)]

    def place(chunk: Iterable[dict[str, Any]]) -> None:
        for event in chunk:
            key = checkout_key(str(event["store"]), str(event["checkout"]))
            out[partition_of(key, partitions)].append(event)

    if tick_step is None:
        place(events)
        return out
    timed = [(epoch(event["occurred_at"], "occurred_at"), event) for event in events]
    for tick_at, chunk in boundaries(timed, tick_step):
        if tick_at is not None:
            for records in out:
                records.append(tick(tick_at))
        place(chunk)
    return out


def last_tick(placed: Sequence[Sequence[dict[str, Any]]]) -> float | None:
    """The latest tick's ``now`` among partitions' records (None: no ticks)."""
    found = [
        float(record["now"])
        for records in placed
        for record in records
        if isinstance(record, dict) and record.get("type") == "tick"
    ]
    return max(found) if found else None


def _key_of(records: Sequence[dict[str, Any]]) -> bytes | None:
    for record in records:
        if _is_event(record):
            return checkout_key(str(record["store"]), str(record["checkout"])).encode()
    return None


@dataclass
class Loaded:
    """What was produced to a topic: events and messages per partition."""

    topic: str
    partitions: int
    events: int
    messages: int
    ticks: int  # tick records (one per partition per tick round)
    seconds: float
    batch: int
    fmt: str
    last_tick: float | None = None  # the watermark of the last tick round, if any

    @property
    def wire(self) -> str:
        return (
            "1 event/message" if self.batch == 1 else f"{self.batch} records/message ({self.fmt})"
        )


async def load_topic(
    bootstrap: str,
    topic: str,
    events: Sequence[dict[str, Any]],
    partitions: int,
    *,
    batch: int = 1,
    fmt: str = "array",
    tick_step: float | None = None,
) -> Loaded:
    """Produce the events (keyed ``store:checkout``) and ticks, as fast as aiokafka allows.

    ``batch == 1``: one record per message, an event keyed by its key (what the gateway does),
    a tick without a key. ``batch > 1``: up to ``batch`` consecutive records of one partition
    per message, keyed by the first event's key (so the key hashes to the message's partition).
    """
    if batch < 1:
        raise ValueError("batch must be >= 1")
    if fmt not in BATCH_FORMATS:
        raise ValueError(f"unknown batch format {fmt!r}")
    per_partition: list[list[tuple[bytes | None, bytes]]] = []
    event_count = tick_count = 0
    placed = partition_records(events, partitions, tick_step)
    for records in placed:
        messages: list[tuple[bytes | None, bytes]] = []
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            value = dumps(chunk[0]) if batch == 1 else encode_batch(chunk, fmt)
            messages.append((_key_of(chunk), value))
            found = sum(1 for record in chunk if _is_event(record))
            event_count += found
            tick_count += len(chunk) - found
        per_partition.append(messages)

    started = time.perf_counter()
    async with producer(bootstrap, linger_ms=10, max_batch_size=512 * 1024) as out:

        async def send_partition(p: int) -> None:
            futures = []
            builder = out.create_batch()
            for key, value in per_partition[p]:
                if builder.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await out.send_batch(builder, topic, partition=p))
                    builder = out.create_batch()
                    if builder.append(key=key, value=value, timestamp=None) is None:
                        raise BenchError(f"a message of {len(value)} bytes exceeds the batch size")
            if builder.record_count():
                futures.append(await out.send_batch(builder, topic, partition=p))
            await asyncio.gather(*futures)

        await asyncio.gather(*(send_partition(p) for p in range(partitions)))
    seconds = time.perf_counter() - started
    messages_count = sum(len(messages) for messages in per_partition)
    return Loaded(
        topic,
        partitions,
        event_count,
        messages_count,
        tick_count,
        seconds,
        batch,
        fmt,
        last_tick(placed),
    )


async def append_ticks(bootstrap: str, loaded: Loaded, now: float) -> Loaded:
    """One more tick round (a tick to every partition) at the end of a loaded topic."""
    async with producer(bootstrap) as out:
        futures = [
            await out.send(loaded.topic, value=dumps(tick(now)), partition=p)
            for p in range(loaded.partitions)
        ]
        await asyncio.gather(*futures)
    return replace(
        loaded,
        messages=loaded.messages + loaded.partitions,
        ticks=loaded.ticks + loaded.partitions,
        last_tick=now,
    )


# --- reading it back raw ----------------------------------------------------------------------


@dataclass
class TopicMap:
    """Per partition: the end offset and the events carried below each message offset."""

    ends: dict[int, int]
    offsets: dict[int, list[int]]
    cumulative: dict[int, list[int]]  # events in messages up to and including offsets[i]

    @property
    def events(self) -> int:
        return sum(c[-1] for c in self.cumulative.values() if c)

    def events_below(self, partition: int, offset: int | None) -> int:
        """Events in messages with an offset < ``offset`` (a committed offset is the next one)."""
        if not offset:
            return 0
        index = bisect.bisect_left(self.offsets[partition], offset)
        return self.cumulative[partition][index - 1] if index else 0


def _raw_consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )


async def _assign_all(
    consumer: AIOKafkaConsumer, topic: str, partitions: int
) -> list[TopicPartition]:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def map_topic(bootstrap: str, loaded: Loaded, timeout: float = 120.0) -> TopicMap:
    """Read the whole topic once: message offsets and events per message, per partition."""
    consumer = _raw_consumer(bootstrap)
    await consumer.start()
    offsets: dict[int, list[int]] = {p: [] for p in range(loaded.partitions)}
    cumulative: dict[int, list[int]] = {p: [] for p in range(loaded.partitions)}
    ends: dict[int, int] = {}
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        await _assign_all(consumer, loaded.topic, loaded.partitions)
        while seen < loaded.messages:
            if time.monotonic() > deadline:
                raise BenchError(f"read {seen} of {loaded.messages} messages of {loaded.topic}")
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    count = events_in(orjson.loads(message.value))
                    total = cumulative[tp.partition][-1] if cumulative[tp.partition] else 0
                    offsets[tp.partition].append(message.offset)
                    cumulative[tp.partition].append(total + count)
                    seen += 1
                if messages:
                    ends[tp.partition] = messages[-1].offset + 1
                    highwater = consumer.highwater(tp)
                    if highwater is not None and highwater > ends[tp.partition]:
                        ends[tp.partition] = highwater
    finally:
        await consumer.stop()
    for p in range(loaded.partitions):
        ends.setdefault(p, 0)
    mapped = TopicMap(ends, offsets, cumulative)
    if mapped.events != loaded.events:
        raise BenchError(
            f"{loaded.topic}: read back {mapped.events} events, produced {loaded.events}"
        )
    return mapped


@dataclass
class RawRun:
    events: int
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def raw_consume(bootstrap: str, loaded: Loaded, timeout: float = 120.0) -> RawRun:
    """The ceiling: aiokafka ``getmany`` + ``orjson.loads`` of every message, no group."""
    consumer = _raw_consumer(bootstrap)
    await consumer.start()
    messages = 0
    loads = orjson.loads
    try:
        await _assign_all(consumer, loaded.topic, loaded.partitions)
        deadline = time.monotonic() + timeout
        started = time.perf_counter()
        while messages < loaded.messages:
            if time.monotonic() > deadline:
                raise BenchError(f"raw consume read {messages} of {loaded.messages} messages")
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for message in records:
                    loads(message.value)
                messages += len(records)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    # Every message was decoded; the events they carry are known from the load.
    return RawRun(loaded.events, messages, seconds)


def median_run(runs: Sequence[RawRun]) -> RawRun:
    rates = [run.rate for run in runs]
    middle = statistics.median_low(rates)
    return runs[rates.index(middle)]


# --- processes and CPU ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux ``/proc``), else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def broker_pid(port: int) -> int | None:
    """Our child process that runs the embedded broker on ``port`` (found through /proc)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == me and "broker" in cmdline and f":{port}" in cmdline:
            return int(entry.name)
    return None


def spawn_module(
    module: str,
    args: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    root: Path = ROOT,
    python: str = sys.executable,
) -> subprocess.Popen[bytes]:
    """``python -m MODULE ARGS`` run from ``root`` (its packages first), dying with us;
    ``python`` is another interpreter when the module needs what our venv lacks."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as handle:
        return subprocess.Popen(
            [python, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root), **(env or {})},
        )


# --- watching a consumer group ----------------------------------------------------------------


@dataclass
class Sample:
    """One poll of a group's commits, with the CPU seconds used so far."""

    at: float  # monotonic
    events: int  # events below the committed offsets
    cpu: float | None  # summed CPU seconds of the measured processes (None: one is gone)
    broker_cpu: float | None


@dataclass
class Progress:
    """A consumer group working through a preloaded topic, from its commits.

    Commits come every commit interval (1 s for the worker, ~2.8 s for Faust's default), so the
    commit that reaches the end can be observed up to an interval after the work ended: a rate
    taken up to it mostly measures idle waiting on a short run. The rate is therefore taken
    between the first commit that shows progress and the *last commit observed while events
    remained* (the group was busy in between, the input being preloaded); both ends lag their
    work by about the same. It needs three distinct commit states, else it is not measured.
    """

    label: str
    events: int
    started: float  # monotonic time the processes were started
    samples: list[Sample] = field(default_factory=list)
    rss: dict[int, int] = field(default_factory=dict)
    drained: float | None = None  # when the downstream topic was committed to its end too
    downstream: dict[str, int] = field(default_factory=dict)  # messages per output topic

    @property
    def points(self) -> list[Sample]:
        """The first observation of every distinct commit state showing progress, in order."""
        out: list[Sample] = []
        for sample in self.samples:
            if sample.events > 0 and (not out or sample.events != out[-1].events):
                out.append(sample)
        return out

    @property
    def first(self) -> Sample:
        """The first sample that shows progress."""
        return self.points[0]

    @property
    def last(self) -> Sample:
        """The sample that saw every partition committed to its end."""
        return self.samples[-1]

    @property
    def end(self) -> Sample | None:
        """The last commit observed before the end was reached (None: too few commits)."""
        points = self.points
        return points[-2] if len(points) >= 3 else None

    @property
    def window(self) -> float:
        end = self.end
        return end.at - self.first.at if end is not None else 0.0

    @property
    def measured_events(self) -> int:
        end = self.end
        return end.events - self.first.events if end is not None else 0

    @property
    def rate(self) -> float | None:
        """Events/s between the first progress commit and the last one before the end."""
        if self.window <= 0:
            return None
        return self.measured_events / self.window

    @property
    def end_to_end(self) -> float | None:
        """Events/s from the first progress commit until the downstream stage caught up
        (coarse: its end is a commit, observed up to a commit interval late)."""
        if self.drained is None or self.drained <= self.first.at:
            return None
        return (self.last.events - self.first.events) / (self.drained - self.first.at)

    @property
    def wall(self) -> float:
        """Seconds from starting the processes to the last commit (start-up included)."""
        return self.last.at - self.started

    @property
    def commits(self) -> int:
        """How many distinct commit states were seen (resolution of the figure)."""
        return len(self.points)

    def _share(self, first: float | None, end: float | None) -> float | None:
        if first is None or end is None or self.window <= 0:
            return None
        return (end - first) / self.window

    def cpu_share(self) -> float | None:
        """CPU of the measured processes during the window, in cores (1.0 = one core busy)."""
        end = self.end
        return self._share(self.first.cpu, end.cpu) if end is not None else None

    def broker_share(self) -> float | None:
        end = self.end
        return self._share(self.first.broker_cpu, end.broker_cpu) if end is not None else None

    def per_cpu_second(self) -> float | None:
        share = self.cpu_share()
        rate = self.rate
        if not share or rate is None:
            return None
        return rate / share


def _cpu_total(pids: Sequence[int]) -> float | None:
    total = 0.0
    for pid in pids:
        seconds = cpu_seconds(pid)
        if seconds is None:
            return None
        total += seconds
    return total


async def watch_group(
    bootstrap: str,
    group: str,
    topic: str,
    mapped: TopicMap,
    *,
    label: str,
    started: float,
    pids: Sequence[int],
    broker: int | None,
    alive: Callable[[], str | None],
    timeout: float,
    poll: float = 0.1,
    on_first: Callable[[], None] | None = None,
) -> Progress:
    """Poll ``group``'s commits on ``topic`` until every partition reaches its end."""
    partitions = sorted(mapped.ends)
    tps = [TopicPartition(topic, p) for p in partitions]
    progress = Progress(label, mapped.events, started)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    # Until the group exists the coordinator lookup logs errors; they are expected.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            reason = alive()
            if reason:
                raise BenchError(f"{label}: {reason}")
            if time.monotonic() > deadline:
                done = progress.samples[-1].events if progress.samples else 0
                raise BenchError(f"{label}: {done} of {mapped.events} events after {timeout:.0f}s")
            try:
                committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
            except Exception:  # the group is not there yet
                await asyncio.sleep(poll)
                continue
            sample = Sample(
                time.monotonic(),
                sum(mapped.events_below(p, c) for p, c in zip(partitions, committed, strict=True)),
                _cpu_total(pids),
                cpu_seconds(broker) if broker else None,
            )
            if sample.events > 0 and on_first is not None and not progress.points:
                on_first()
            progress.samples.append(sample)
            finished = all(
                (c or 0) >= mapped.ends[p] for p, c in zip(partitions, committed, strict=True)
            )
            if finished:
                for pid in pids:
                    size = rss_bytes(pid)
                    if size is not None:
                        progress.rss[pid] = size
                return progress
            await asyncio.sleep(poll)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        quiet.setLevel(level)


async def highwaters(
    bootstrap: str, topic: str, partitions: int, timeout: float = 30.0
) -> dict[int, int]:
    """End offset of every partition from fetch responses (``end_offsets()`` is wrong on tansu)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024,
        fetch_max_bytes=64 * 1024,
    )
    await consumer.start()
    try:
        tps = await _assign_all(consumer, topic, partitions)
        deadline = time.monotonic() + timeout
        while True:
            await consumer.getmany(timeout_ms=100, max_records=1)
            marks = {tp.partition: consumer.highwater(tp) for tp in tps}
            if all(mark is not None for mark in marks.values()):
                return {p: int(mark or 0) for p, mark in marks.items()}
            if time.monotonic() > deadline:
                raise BenchError(f"no high-water mark for every partition of {topic}")
    finally:
        await consumer.stop()


async def wait_committed(
    bootstrap: str,
    group: str,
    topic: str,
    ends: dict[int, int],
    *,
    alive: Callable[[], str | None],
    timeout: float,
    poll: float = 0.1,
) -> float:
    """Monotonic time at which ``group`` has committed ``topic`` up to ``ends``."""
    tps = [TopicPartition(topic, p) for p in sorted(ends)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            reason = alive()
            if reason:
                raise BenchError(reason)
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
            if all((c or 0) >= ends[tp.partition] for tp, c in zip(tps, committed, strict=True)):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise BenchError(f"{group} did not commit {topic} to its end in {timeout:.0f}s")
            await asyncio.sleep(poll)
    finally:
        await consumer.stop()


def exited(processes: Sequence[tuple[subprocess.Popen[bytes], Path]]) -> Callable[[], str | None]:
    """An ``alive`` check: the reason (with the log tail) when a process has exited."""

    def check() -> str | None:
        for process, log in processes:
            code = process.poll()
            if code is not None:
                tail = log.read_bytes()[-2500:].decode(errors="replace") if log.exists() else ""
                return f"process {process.pid} exited with {code}; log {log}:\n{tail}"
        return None

    return check


# --- output -----------------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def fmt_share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain-text table (also valid Markdown)."""
    rows = [list(map(str, row)) for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
