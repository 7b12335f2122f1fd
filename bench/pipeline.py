"""Pipeline throughput: events/s of one ``cartbands worker`` against its two references.

One run, one embedded broker, the same generated events (bench/events.py) for all three:

- **raw**: aiokafka ``getmany`` + ``orjson.loads`` of every message (the ceiling), median of
  a few passes over the pipeline's input topic;
- **naive**: bench/naive_faust.py, a Faust agent writing one table entry per event, reading a
  one-event-per-message copy of the input (the per-message Faust baseline of issue 4);
- **pipeline**: ``python -m cartbands worker`` (whatever it does today) on its own topic prefix;
- **core alone**: the same events and tick rounds replayed through the pure core in a child
  process (bench/core_ceiling.py), events per CPU second: what a worker that did nothing but
  the core would reach, the ceiling of the pipeline's events per CPU second;
- **compiled** (``--compiled``): the worker and the core alone again with the core compiled by
  mypyc, as the production image builds it (bench/compiled.py), on a fresh copy of the input;
- **quixstreams** (bench/quix_peer.py, when an interpreter with quixstreams is given by
  ``--quix-python`` or ``CARTBANDS_QUIX_PYTHON``): stage A's per-event core on quixstreams with
  RocksDB state, and a minimal state-write-per-event variant, on the pipeline's own input topic.

Faust-based figures come from the consumer group's commits (see bench/harness.py): measured from
the first commit showing progress to the commit reaching the end of every partition, so process
start-up and the group join are excluded; the wall time with start-up is shown too.
``--batch K`` makes the producer put K events of one partition in each message (JSON array, or
``{"batch": [...]}`` with ``--batch-format object``); figures always count events.

    python -m bench.pipeline [--events 100000] [--batch 1] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.compiled import build_compiled
from bench.core_ceiling import CoreRun, replay
from bench.events import Mix, Summary, generate, summarize
from bench.harness import (
    BATCH_FORMATS,
    ROOT,
    BenchError,
    Loaded,
    Progress,
    RawRun,
    TopicMap,
    broker_pid,
    exited,
    fmt_rate,
    fmt_share,
    highwaters,
    load_topic,
    map_topic,
    median_run,
    quiet_clients,
    raw_consume,
    spawn_module,
    table,
    wait_committed,
    watch_group,
)
from bench.naive_faust import TABLE as NAIVE_TABLE
from bus.kafka import ensure_topics
from bus.topics import TopicNames, group_of
from cartbands.broker import BROKER_KINDS, Broker, make_broker
from cartbands.processes import spawn, stop
from config.policyfile import DEFAULT_POLICY
from recovery.checkouts import epoch

QUIX_PYTHON_ENV = "CARTBANDS_QUIX_PYTHON"
QUIX_VARIANTS = ("stage-a", "minimal")  # bench/quix_peer.py's VARIANTS (it imports quixstreams)
NAIVE_TARGET = 8.0
WORKER_TABLES = ("checkouts", "shoppers", "watermarks")  # the agents' Faust tables
RAW_TARGET = 0.15


@dataclass
class Options:
    events: int = 100_000
    seed: int = 7
    partitions: int = 8
    batches: tuple[int, ...] = (1,)  # records per message; the pipeline runs once per value
    fmt: str = "object"
    policy: Path = DEFAULT_POLICY
    raw_runs: int = 3
    naive: bool = True
    core: bool = True  # replay the input through the pure core too (event clock only)
    timeout: float = 900.0
    logs: Path | None = None
    worker_args: tuple[str, ...] = ()
    worker_root: Path | None = None  # run `cartbands worker` from another checkout

    @property
    def batch(self) -> int:
        """The wire format of single-run benchmarks (scale-out, profile): the first one."""
        return self.batches[0]

    clock: str = "event"  # event: ticks in the input (replay); wall; none: pass no --clock
    tick_step: float | None = None  # event-time seconds between ticks (clock=event) ...
    events_per_tick: int = 2_000  # ... else as many as give one tick round per this many events
    broker: str = "tansu"  # or "kafka": Apache Kafka (cartbands/kafka_broker.py)
    quix_python: Path | None = None  # an interpreter with quixstreams: the quixstreams peer
    quix_note: str | None = None  # why the quixstreams peer is not run, if it is not
    shell: bool = False  # also Faust consume-only, Faust's shell and the worker's (streams/)
    compiled: bool = False  # also the worker and the core compiled with mypyc (bench/compiled.py)


@dataclass
class Input:
    """The generated events, ready to be loaded under any topic prefix."""

    events: list[dict[str, Any]]
    summary: Summary


def make_input(options: Options) -> Input:
    """Event clock: a fixed day of events (deterministic). Wall clock: the day before now, so
    the worker's wall-clock ticks abandon checkouts as they would live."""
    mix = Mix()
    if options.clock == "wall":
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        mix = Mix(start=now - mix.span)
    events = generate(options.events, options.seed, mix)
    return Input(events, summarize(events))


@dataclass
class Bench:
    """A broker, a scratch directory and a counter for fresh prefixes and group ids."""

    broker: Broker
    workdir: Path
    options: Options
    runs: int = 0
    stamp: str = field(default_factory=lambda: datetime.now(UTC).strftime("%H%M%S"))

    def fresh(self, what: str) -> str:
        self.runs += 1
        return f"bench-{self.stamp}-{what}-{self.runs}"

    async def load(
        self, data: Input, topic: str, batch: int, ticks: bool
    ) -> tuple[Loaded, TopicMap]:
        await ensure_topics(self.broker.bootstrap, [topic], self.options.partitions)
        event_clock = ticks and self.options.clock == "event"
        loaded = await load_topic(
            self.broker.bootstrap,
            topic,
            data.events,
            self.options.partitions,
            batch=batch,
            fmt=self.options.fmt,
            tick_step=tick_step(data.events, self.options) if event_clock else None,
        )
        return loaded, await map_topic(self.broker.bootstrap, loaded)


def tick_step(events: list[dict[str, Any]], options: Options) -> float:
    """Event-time seconds between tick rounds.

    Live, a worker ticks once a second whatever the event rate, so at a few thousand events/s
    ticks are a small overhead. By default the input gets one tick round per
    ``events_per_tick`` events, the density of live ticking at that many events/s; an explicit
    ``tick_step`` (e.g. 300 s, what ``cartbands replay`` uses) overrides it.
    """
    if options.tick_step is not None:
        return options.tick_step
    if len(events) < 2:
        return 300.0
    span = epoch(events[-1]["occurred_at"], "t") - epoch(events[0]["occurred_at"], "t")
    return max(1.0, span * options.events_per_tick / len(events))


@contextlib.contextmanager
def bench_context(options: Options) -> Iterator[Bench]:
    """The broker and a scratch directory, both gone afterwards (logs kept on request)."""
    scratch = Path(tempfile.mkdtemp(prefix="cartbands-bench-"))
    workdir = options.logs or scratch
    broker = make_broker(options.broker)
    try:
        broker.start()
        yield Bench(broker, workdir, options)
    finally:
        broker.close()
        shutil.rmtree(scratch, ignore_errors=True)


def measure_raw(bench: Bench, loaded: Loaded) -> RawRun:
    runs = [
        asyncio.run(raw_consume(bench.broker.bootstrap, loaded))
        for _ in range(max(1, bench.options.raw_runs))
    ]
    for run in runs:
        if run.events != loaded.events:
            raise BenchError(f"raw consume counted {run.events} events, expected {loaded.events}")
    return median_run(runs)


def _watch(
    bench: Bench,
    label: str,
    group: str,
    topic: str,
    mapped: TopicMap,
    processes: list[tuple[subprocess.Popen[bytes], Path]],
    started: float,
    on_first: Callable[[], None] | None = None,
) -> Progress:
    return asyncio.run(
        watch_group(
            bench.broker.bootstrap,
            group,
            topic,
            mapped,
            label=label,
            started=started,
            pids=[process.pid for process, _ in processes],
            # the broker's own process: /proc's search by port can also match a peer or a
            # worker, whose command line names the broker's address
            broker=getattr(bench.broker, "pid", None) or broker_pid(bench.broker.port),
            alive=exited(processes),
            timeout=bench.options.timeout,
            on_first=on_first,
        )
    )


def measure_naive(
    bench: Bench,
    loaded: Loaded,
    mapped: TopicMap,
    on_start: Callable[[list[int]], Callable[[], None] | None] | None = None,
    shell: str | None = None,
) -> Progress:
    """bench/naive_faust.py; with ``shell`` (a SHELL_LABELS key) its consume-only variant on
    that shell (no table write, nothing produced)."""
    group = bench.fresh("naive" if shell is None else f"shell-{shell}")
    app_shell, work = SHELLS[shell] if shell is not None else ("faust", "table")
    log = bench.workdir / f"{group}.log"
    args = [
        "--broker", bench.broker.url,
        "--topic", loaded.topic,
        "--app-id", group,
        "--partitions", str(bench.options.partitions),
        "--work", work,
        "--shell", app_shell,
    ]  # fmt: skip
    started = time.monotonic()
    process = spawn_module("bench.naive_faust", args, log)
    hook = on_start([process.pid]) if on_start else None
    try:
        progress = _watch(
            bench, "naive Faust", group, loaded.topic, mapped, [(process, log)], started, hook
        )
    finally:
        stop(process)
    if shell is not None:
        return progress
    # It must have written one table entry (a changelog message) per event: check it did.
    changelog = f"{group}-{NAIVE_TABLE}-changelog"
    marks = asyncio.run(highwaters(bench.broker.bootstrap, changelog, bench.options.partitions))
    progress.downstream[f"{NAIVE_TABLE}-changelog"] = sum(marks.values())
    if sum(marks.values()) < loaded.events:
        raise BenchError(
            f"naive Faust wrote {sum(marks.values())} changelog messages for {loaded.events} events"
        )
    return progress


def app_id_of(names: TopicNames) -> str:
    """The workers' group (and table prefix) on the topics of ``names``."""
    return f"{names.prefix.rstrip('-')}-app"


def worker_log(bench: Bench, names: TopicNames, index: int) -> Path:
    """Where worker ``index`` on the topics of ``names`` writes its log."""
    return bench.workdir / f"{app_id_of(names)}-worker-{index}.log"


def worker_state(bench: Bench, names: TopicNames, index: int) -> Path:
    """The state directory of worker ``index`` on the topics of ``names``."""
    return bench.workdir / f"{app_id_of(names)}-state-{index}"


def worker_args(bench: Bench, names: TopicNames, index: int) -> list[str]:
    state = worker_state(bench, names, index)
    return [
        "worker",
        "--broker", bench.broker.url,
        "--policy", str(bench.options.policy),
        "--app-id", app_id_of(names),
        "--topic-prefix", names.prefix,
        "--partitions", str(bench.options.partitions),
        "--state-dir", str(state),
        *(["--clock", bench.options.clock] if bench.options.clock != "none" else []),
        *bench.options.worker_args,
    ]  # fmt: skip


async def prepare_pipeline(
    bench: Bench, data: Input, batch: int
) -> tuple[TopicNames, Loaded, TopicMap]:
    """A fresh topic prefix with every pipeline topic, its cart-events preloaded."""
    prefix = bench.fresh("pipe")
    names = TopicNames(f"{prefix}-")
    await ensure_topics(bench.broker.bootstrap, names.pipeline_topics, bench.options.partitions)
    loaded, mapped = await bench.load(data, names.cart_events, batch, ticks=True)
    return names, loaded, mapped


def measure_workers(
    bench: Bench,
    names: TopicNames,
    mapped: TopicMap,
    count: int = 1,
    on_start: Callable[[list[int]], Callable[[], None] | None] | None = None,
    root: Path | None = None,
    stage: str = "both",
) -> Progress:
    """Start ``count`` workers in one group on preloaded input; watch until all is committed.
    ``root``: where ``cartbands`` is imported from (default ``--worker-root``, else here).
    ``stage`` ``a``: the workers run stage A alone (``--stage a``, in a group of its own), and
    the run ends when they have committed the input: no stage B reads what they produce."""
    app_id = group_of(app_id_of(names), stage)
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    started = time.monotonic()
    try:
        for index in range(count):
            log = worker_log(bench, names, index)
            args = [
                *worker_args(bench, names, index),
                *(["--stage", stage] if stage != "both" else []),
            ]
            where = root or bench.options.worker_root
            if where is None:
                process = spawn(args, log)
            else:
                process = spawn_module("cartbands", args, log, root=where)
            processes.append((process, log))
        hook = on_start([p.pid for p, _ in processes]) if on_start else None
        label = f"cartbands worker x{count}"
        progress = _watch(bench, label, app_id, names.cart_events, mapped, processes, started, hook)
        if stage == "both":
            asyncio.run(follow_downstream(bench, app_id, names, processes, progress))
        return progress
    finally:
        for process, _ in processes:
            stop(process)


async def follow_downstream(
    bench: Bench,
    app_id: str,
    names: TopicNames,
    processes: list[tuple[subprocess.Popen[bytes], Path]],
    progress: Progress,
) -> None:
    """After stage A is done: wait until stage B has committed ``shopper-events`` to its end,
    then count what reached the output topics."""
    bootstrap, partitions = bench.broker.bootstrap, bench.options.partitions
    ends = await highwaters(bootstrap, names.shopper_events, partitions)
    progress.drained = await wait_committed(
        bootstrap,
        app_id,
        names.shopper_events,
        ends,
        alive=exited(processes),
        timeout=bench.options.timeout,
    )
    for topic in (names.shopper_events, *names.touch_topics):
        marks = await highwaters(bootstrap, topic, partitions)
        progress.downstream[topic.removeprefix(names.prefix)] = sum(marks.values())
    # Every table write is a changelog message: what the worker produced besides its outputs.
    for table_name in WORKER_TABLES:
        try:
            marks = await highwaters(bootstrap, f"{app_id}-{table_name}-changelog", partitions, 5.0)
        except BenchError:  # the table was renamed or is gone: nothing to count
            continue
        progress.downstream[f"{table_name}-changelog"] = sum(marks.values())


def measure_quix(
    bench: Bench, names: TopicNames, loaded: Loaded, mapped: TopicMap, variant: str
) -> Progress:
    """bench/quix_peer.py in the quixstreams interpreter, on the pipeline's input topic."""
    python = bench.options.quix_python
    assert python is not None
    group = bench.fresh(f"quix-{variant}")
    output = f"{group}-out"
    asyncio.run(ensure_topics(bench.broker.bootstrap, [output], bench.options.partitions))
    log = bench.workdir / f"{group}.log"
    args = [
        "--broker", bench.broker.bootstrap,
        "--topic", loaded.topic,
        "--output", output,
        "--group", group,
        "--state-dir", str(bench.workdir / f"{group}-state"),
        "--variant", variant,
        "--policy", str(bench.options.policy),
        *(["--batched"] if loaded.batch > 1 else []),
    ]  # fmt: skip
    started = time.monotonic()
    process = spawn_module("bench.quix_peer", args, log, python=str(python))
    label = f"quixstreams {variant}"
    try:
        progress = _watch(bench, label, group, loaded.topic, mapped, [(process, log)], started)
    finally:
        stop(process)
    bootstrap, partitions = bench.broker.bootstrap, bench.options.partitions
    if variant != "minimal":
        marks = asyncio.run(highwaters(bootstrap, output, partitions))
        progress.downstream["output"] = sum(marks.values())
    return progress


def quix_python(given: Path | None) -> tuple[Path | None, str | None]:
    """The quixstreams interpreter (option, else environment), or why there is none."""
    if given is None and os.environ.get(QUIX_PYTHON_ENV):
        given = Path(os.environ[QUIX_PYTHON_ENV])
    if given is None:
        return None, (
            f"quixstreams peer skipped: no --quix-python nor {QUIX_PYTHON_ENV} (an interpreter "
            "with the bench-quix extra, outside the project's venv)"
        )
    check = subprocess.run(
        [str(given), "-c", "import quixstreams"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        return None, f"quixstreams peer skipped: {given} cannot import quixstreams"
    return given, None


@dataclass
class PipelineRun:
    """The pipeline on one wire format, with the raw ceiling of the very same topic."""

    loaded: Loaded
    raw: RawRun
    progress: Progress | None
    failure: str | None = None
    quix: dict[str, Progress] = field(default_factory=dict)  # by bench/quix_peer.py variant
    quix_failures: dict[str, str] = field(default_factory=dict)
    compiled: Progress | None = None  # the worker with the compiled core (--compiled)
    compiled_failure: str | None = None
    stage_a: Progress | None = None  # the worker running stage A alone (beside quixstreams)
    stage_a_failure: str | None = None

    def ratio_raw(self) -> float | None:
        if self.progress is None or self.progress.rate is None or not self.raw.rate:
            return None
        return self.progress.rate / self.raw.rate


@dataclass
class Report:
    options: Options
    summary: Summary
    naive: Progress | None
    raw_single: RawRun | None
    runs: list[PipelineRun]
    core: CoreRun | None = None
    shells: dict[str, Progress] = field(default_factory=dict)  # Faust consume-only, by shell
    compiled_core: CoreRun | None = None  # the core alone, compiled (--compiled)
    compiled_note: str | None = None  # how the compiled core was built, or why it was not

    def ratio_naive(self, run: PipelineRun) -> float | None:
        if run.progress is None or run.progress.rate is None:
            return None
        if self.naive is None or not self.naive.rate:
            return None
        return run.progress.rate / self.naive.rate

    def render(self) -> str:
        rows: list[list[str]] = []
        raws = [(run.loaded.wire, run.raw) for run in self.runs]
        if self.raw_single is not None and all(run.loaded.batch != 1 for run in self.runs):
            raws.append(("1 event/message, no ticks", self.raw_single))
        for wire, raw in raws:
            rows.append(
                [f"raw aiokafka getmany + orjson, {wire}", fmt_rate(raw.rate), f"{raw.seconds:.2f}"]
                + ["-"] * 5
            )
        if self.naive is not None:
            rows.append(progress_row(self.naive, "naive Faust, 1 event/message"))
        for shell, found in self.shells.items():
            rows.append(progress_row(found, f"Faust consume only, {SHELL_LABELS[shell]}"))
        for run in self.runs:
            if run.progress is not None:
                rows.append(progress_row(run.progress, f"cartbands worker, {run.loaded.wire}"))
            if run.compiled is not None:
                label = f"cartbands worker, compiled core, {run.loaded.wire}"
                rows.append(progress_row(run.compiled, label))
            if run.stage_a is not None:
                label = f"cartbands worker, stage A alone, {run.loaded.wire}"
                rows.append(progress_row(run.stage_a, label))
            for variant, found in run.quix.items():
                label = f"quixstreams {QUIX_LABELS[variant]}, {run.loaded.wire}"
                rows.append(progress_row(found, label))
        for alone in (self.core, self.compiled_core):
            if alone is not None:
                label = f"core alone, same input and ticks ({alone.core})"
                rows.append([label, "-", "-", "-", "-", "1.00", "-", fmt_rate(alone.rate)])
        first = self.runs[0].loaded
        lines = [
            f"pipeline throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs",
            f"input: {self.summary.events:,} events ({self.summary.updates:,} cart_updated, "
            f"{self.summary.orders:,} orders; {self.summary.abandoned:,} of "
            f"{self.summary.checkouts:,} checkouts abandoned; {self.summary.stores} stores; "
            f"{self.summary.mean_bytes:.0f} B/event), {self.options.partitions} partitions, "
            f"clock {self.options.clock}"
            + (
                f", {first.ticks:,} tick records ({first.ticks // self.options.partitions:,} "
                "rounds)"
                if first.ticks
                else ""
            ),
            "",
            table(PROGRESS_HEADERS, rows),
            "",
        ]
        lines.extend(self.core_lines())
        lines.extend(self.compiled_lines())
        lines.extend(self.quix_lines())
        lines.extend(self.shell_lines())
        if self.naive is not None:
            written = messages_out(self.naive)
            lines.append(f"naive Faust: messages out: {written} (one table write per event)")
        for run in self.runs:
            wire = run.loaded.wire
            if run.progress is None:
                lines.append(f"pipeline ({wire}) NOT MEASURED: {run.failure}")
                continue
            lines.append(downstream_line(run.progress, wire))
            ratio = self.ratio_naive(run)
            if ratio is not None:
                verdict = "meets" if ratio >= NAIVE_TARGET else "below"
                lines.append(
                    f"  pipeline / naive Faust: {ratio:.2f}x (target >= {NAIVE_TARGET:.0f}x: "
                    f"{verdict})"
                )
            raw_ratio = run.ratio_raw()
            if raw_ratio is not None:
                verdict = "meets" if raw_ratio >= RAW_TARGET else "below"
                lines.append(
                    f"  pipeline / raw consume of the same topic: {raw_ratio:.1%} "
                    f"(target >= {RAW_TARGET:.0%}: {verdict})"
                )
            end_to_end = run.progress.end_to_end
            if end_to_end is not None and self.naive is not None and self.naive.rate:
                lines.append(
                    f"  end to end (stage B included, coarser) / naive Faust: "
                    f"{end_to_end / self.naive.rate:.2f}x; / raw: "
                    f"{end_to_end / run.raw.rate if run.raw.rate else 0.0:.1%}"
                )
        lines.append(
            "events/s: from the first commit showing progress to the last commit seen before "
            "every partition was committed to its end (start-up and the wait for the final "
            "commit excluded; 'wall' includes both). '-': fewer than 3 distinct commits, run "
            "more --events. cpu: cores used by the measured process(es) in that window; "
            "broker: the tansu process."
        )
        return "\n".join(lines)

    def compiled_lines(self) -> list[str]:
        """The compiled core against the pure one and naive Faust, in the same run."""
        lines = [self.compiled_note] if self.compiled_note else []
        naive = self.naive.rate if self.naive is not None else None
        for run in self.runs:
            wire = run.loaded.wire
            if run.compiled_failure is not None:
                lines.append(f"worker, compiled core ({wire}) NOT MEASURED: {run.compiled_failure}")
            found = run.compiled
            if found is None or found.rate is None:
                continue
            parts = [f"worker, compiled core, {wire}:"]
            if naive:
                parts.append(f"/ naive Faust {found.rate / naive:.2f}x;")
            if run.progress is not None and run.progress.rate:
                parts.append(f"/ pure-Python worker {found.rate / run.progress.rate:.2f}x;")
            if found.end_to_end is not None and naive:
                parts.append(f"end to end / naive Faust {found.end_to_end / naive:.2f}x;")
            parts.append(f"messages out: {messages_out(found) or 'none'}")
            lines.append(" ".join(parts))
        pure, compiled = self.core, self.compiled_core
        if pure is not None and compiled is not None and pure.rate and compiled.rate:
            lines.append(f"core alone, compiled / pure: {compiled.rate / pure.rate:.2f}x")
        return lines

    def shell_lines(self) -> list[str]:
        """Faust's consumer shell per message: CPU us per message of a consume-only agent,
        less what raw aiokafka getmany + orjson of the same topic takes per message."""
        raw = self.raw_single or next((run.raw for run in self.runs if run.loaded.batch == 1), None)
        lines: list[str] = []
        for shell, found in self.shells.items():
            per_cpu = found.per_cpu_second()
            if not per_cpu:
                continue
            us = 1e6 / per_cpu
            line = f"Faust consume only, {SHELL_LABELS[shell]}: {us:.1f} us of CPU per message"
            if raw is not None and raw.rate:
                line += f" ({us - 1e6 / raw.rate:.1f} us more than raw getmany + orjson)"
            lines.append(line)
        return lines

    def quix_lines(self) -> list[str]:
        """The quixstreams peer against the worker and the references of the same run."""
        if self.options.quix_note:
            return [self.options.quix_note]
        lines: list[str] = []
        naive = self.naive.rate if self.naive is not None else None
        for run in self.runs:
            wire = run.loaded.wire
            if run.stage_a_failure is not None:
                lines.append(
                    f"cartbands stage A alone ({wire}) NOT MEASURED: {run.stage_a_failure}"
                )
            for variant, reason in run.quix_failures.items():
                lines.append(f"quixstreams {variant} ({wire}) NOT MEASURED: {reason}")
            for variant, found in run.quix.items():
                if found.rate is None:
                    continue
                parts = [f"quixstreams {QUIX_LABELS[variant]}, {wire}:"]
                if naive:
                    parts.append(f"/ naive Faust {found.rate / naive:.2f}x;")
                if run.raw.rate:
                    parts.append(f"/ raw {found.rate / run.raw.rate:.1%};")
                worker = run.progress.rate if run.progress is not None else None
                if worker:
                    parts.append(f"worker / it {worker / found.rate:.2f}x;")
                alone = run.stage_a.rate if run.stage_a is not None else None
                if alone:
                    parts.append(f"worker's stage A alone / it {alone / found.rate:.2f}x;")
                parts.append(f"messages out: {messages_out(found) or 'none'}")
                lines.append(" ".join(parts))
        return lines

    def core_lines(self) -> list[str]:
        """What the core alone bounds: no worker that runs it can beat its events per CPU s."""
        if self.core is None or not self.core.rate:
            return []
        lines = [f"core alone: {self.core.rate:,.0f} events per CPU second ({self.core.core})"]
        if self.naive is not None and self.naive.rate:
            lines.append(
                f"  core alone / naive Faust: {self.core.rate / self.naive.rate:.2f}x, the most "
                "pipeline / naive Faust can be for a worker on one core"
            )
        for run in self.runs:
            worker = run.progress.per_cpu_second() if run.progress is not None else None
            if worker and run.raw.rate:
                lines.append(
                    f"  {run.loaded.wire}: the core is {worker / self.core.rate:.0%} of the "
                    f"worker's CPU time; core alone / raw: {self.core.rate / run.raw.rate:.1%}"
                )
        return lines


SHELL_LABELS = {
    "faust": "Faust's shell (default Monitor, wait_first per message)",
    "cartbands": "the worker's shell (OffsetsMonitor, inline delivery)",
    "cartbands-take": "the worker's shell, Faust's take_events windows",
    "cartbands-inbox": "the worker's shell, windows from an inbox as the agents take them",
}
SHELLS = {  # label key: (bench/naive_faust.py --shell, --work)
    "faust": ("faust", "none"),
    "cartbands": ("cartbands", "none"),
    "cartbands-take": ("cartbands", "take"),
    "cartbands-inbox": ("cartbands", "inbox"),
}

QUIX_LABELS = {
    "stage-a": "stage A (validate + apply_event, RocksDB state)",
    "minimal": "minimal (1 state write per event)",
}

PROGRESS_HEADERS = (
    "what",
    "events/s",
    "window s",
    "wall s",
    "commits",
    "cpu",
    "broker cpu",
    "events/cpu-s",
)


def messages_out(progress: Progress) -> str:
    """What a run wrote, per output topic: ``topic count, ...``."""
    return ", ".join(f"{topic} {count:,}" for topic, count in progress.downstream.items())


def downstream_line(progress: Progress, wire: str) -> str:
    return (
        f"pipeline, {wire}: end to end (until stage B committed shopper-events to its end) "
        f"{fmt_rate(progress.end_to_end)} events/s; messages out: {messages_out(progress)}"
    )


def progress_row(progress: Progress, label: str | None = None) -> list[str]:
    return [
        label or progress.label,
        fmt_rate(progress.rate),
        f"{progress.window:.2f}",
        f"{progress.wall:.1f}",
        str(progress.commits),
        fmt_share(progress.cpu_share()),
        fmt_share(progress.broker_share()),
        fmt_rate(progress.per_cpu_second()),
    ]


def measure_fresh(
    bench: Bench, data: Input, batch: int, says: str, root: Path | None = None, stage: str = "both"
) -> Progress:
    """The worker (from ``root``, running ``stage``) on a fresh prefix with its own copy of the
    input; BenchError unless its log has the line ``says`` (what it was asked to be)."""
    names, _, mapped = asyncio.run(prepare_pipeline(bench, data, batch))
    progress = measure_workers(bench, names, mapped, root=root, stage=stage)
    log = worker_log(bench, names, 0)
    said = log.read_text(errors="replace") if log.exists() else ""
    if says not in said:
        raise BenchError(f"the worker's log does not say {says!r} (see {log.name})")
    return progress


def measure_compiled(bench: Bench, data: Input, batch: int, site: Path) -> Progress:
    """The worker run from the compiled wheel installed in ``site``."""
    return measure_fresh(bench, data, batch, "recovery core: compiled with mypyc", root=site)


def measure_stage_a(bench: Bench, data: Input, batch: int) -> Progress:
    """The worker running stage A alone (``--stage a``), the part quixstreams' peer runs."""
    return measure_fresh(bench, data, batch, "stages: A alone", stage="a")


def run(options: Options) -> Report:
    data = make_input(options)
    runs: list[PipelineRun] = []
    shells: dict[str, Progress] = {}
    site: Path | None = None
    note: str | None = None
    # the compiled wheel outlives the broker's scratch directory: the core replays run after it
    built = Path(tempfile.mkdtemp(prefix="cartbands-compiled-")) if options.compiled else None
    try:
        with bench_context(options) as bench:
            if built is not None:
                try:
                    site, took = build_compiled(options.worker_root or ROOT, built)
                    note = f"compiled core: built with mypyc in {took:.0f} s (not timed)"
                except BenchError as exc:
                    note = f"compiled core NOT MEASURED: {exc}"
            raw_single = naive = None
            if options.naive or options.shell or 1 not in options.batches:
                single_topic = f"{bench.fresh('single')}-cart-events"
                single, single_map = asyncio.run(bench.load(data, single_topic, 1, ticks=False))
                if 1 not in options.batches:
                    raw_single = measure_raw(bench, single)
                if options.naive:
                    naive = measure_naive(bench, single, single_map)
                if options.shell:
                    for shell in SHELL_LABELS:
                        shells[shell] = measure_naive(bench, single, single_map, shell=shell)
            for batch in options.batches:
                names, loaded, mapped = asyncio.run(prepare_pipeline(bench, data, batch))
                raw = measure_raw(bench, loaded)
                try:
                    found = PipelineRun(loaded, raw, measure_workers(bench, names, mapped))
                except BenchError as exc:
                    found = PipelineRun(loaded, raw, None, str(exc))
                runs.append(found)
                if site is not None:
                    try:
                        found.compiled = measure_compiled(bench, data, batch, site)
                    except BenchError as exc:
                        found.compiled_failure = str(exc)
                if options.quix_python is not None:
                    try:
                        found.stage_a = measure_stage_a(bench, data, batch)
                    except BenchError as exc:
                        found.stage_a_failure = str(exc)
                    for variant in QUIX_VARIANTS:
                        try:
                            quix = measure_quix(bench, names, loaded, mapped, variant)
                            found.quix[variant] = quix
                        except BenchError as exc:
                            found.quix_failures[variant] = str(exc)
        core = compiled_core = None
        if options.core and options.clock == "event":
            step = tick_step(data.events, options)
            core = replay(data.events, options.policy, step, options.worker_root)
            if site is not None:
                compiled_core = replay(data.events, options.policy, step, site)
                if not compiled_core.core.startswith("compiled"):
                    note = f"compiled core NOT MEASURED: the replay ran {compiled_core.core}"
                    compiled_core = None
    finally:
        if built is not None:
            shutil.rmtree(built, ignore_errors=True)
    return Report(options, data.summary, naive, raw_single, runs, core, shells, compiled_core, note)


def add_common(parser: argparse.ArgumentParser) -> None:
    defaults = Options()
    parser.add_argument("--events", type=int, default=defaults.events)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--partitions", type=int, default=defaults.partitions)
    parser.add_argument(
        "--broker",
        choices=BROKER_KINDS,
        default=defaults.broker,
        help="tansu (embedded, default) or kafka (Apache Kafka, needs java and mvn)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[1],
        help="records per message, e.g. `--batch 1 100` (default 1); bench.pipeline runs "
        "once per value, the others use the first",
    )
    parser.add_argument("--batch-format", choices=BATCH_FORMATS, default=defaults.fmt)
    parser.add_argument("--policy", type=Path, default=defaults.policy)
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="per group run")
    parser.add_argument("--logs", type=Path, default=None, help="keep process logs here")
    parser.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        help="extra argument for `cartbands worker` (repeatable), e.g. --worker-arg=--store=...",
    )
    parser.add_argument(
        "--clock",
        choices=("event", "wall", "none"),
        default="event",
        help="event (default): ticks every --tick-step of event time in the input, worker "
        "--clock event; wall: events of the last day, worker --clock wall; none: no ticks and "
        "no --clock flag (for checkouts older than the clock option)",
    )
    parser.add_argument(
        "--events-per-tick",
        type=int,
        default=Options.events_per_tick,
        help="one tick round (a tick to every partition) per this many events (clock event)",
    )
    parser.add_argument(
        "--tick-step", type=float, default=None, help="or: event-time seconds between ticks"
    )
    parser.add_argument(
        "--worker-root",
        type=Path,
        default=None,
        help="run `cartbands worker` from this checkout (e.g. an older commit, for before/after)",
    )


def options_from(args: argparse.Namespace, **extra: object) -> Options:
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    return Options(
        events=args.events,
        seed=args.seed,
        partitions=args.partitions,
        batches=tuple(args.batch),
        fmt=args.batch_format,
        policy=args.policy,
        timeout=args.timeout,
        logs=args.logs,
        worker_args=tuple(args.worker_arg),
        worker_root=args.worker_root.resolve() if args.worker_root else None,
        clock=args.clock,
        tick_step=args.tick_step,
        events_per_tick=args.events_per_tick,
        broker=args.broker,
        **extra,  # type: ignore[arg-type]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n")[0]
    )
    add_common(parser)
    parser.add_argument("--raw-runs", type=int, default=3)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive Faust reference")
    parser.add_argument(
        "--quix-python",
        type=Path,
        default=None,
        help=f"an interpreter with quixstreams (else ${QUIX_PYTHON_ENV}): run the quixstreams "
        "peer (bench/quix_peer.py) on the same input",
    )
    parser.add_argument("--no-quix", action="store_true", help="skip the quixstreams peer")
    parser.add_argument(
        "--shell",
        action="store_true",
        help="also run Faust consume-only (bench/naive_faust.py --work none) on Faust's shell "
        "and on the worker's (streams/): Faust's cost per message",
    )
    parser.add_argument(
        "--no-core", action="store_true", help="skip the pure core's replay of the same input"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also run the worker and the core alone with the core compiled by mypyc, as the "
        "production image builds it (needs a C compiler; the build takes about a minute)",
    )
    args = parser.parse_args(argv)
    quiet_clients()
    python, note = (None, None) if args.no_quix else quix_python(args.quix_python)
    options = options_from(
        args,
        raw_runs=args.raw_runs,
        naive=not args.no_naive,
        core=not args.no_core,
        quix_python=python,
        quix_note=note,
        shell=args.shell,
        compiled=args.compiled,
    )
    print(run(options).render())


if __name__ == "__main__":
    main()
