"""Timer scale: tick cost against pending timers, and memory per pending cart/shopper state.

Two parts, both on the code the worker runs (recovery/timer_index.py TimerIndex,
recovery/checkouts.py stage A, recovery/shoppers.py stage B):

1. **In process** (no Faust, no broker): real states for N pending carts are built by folding
   generated events through stage A (one update each, every shopper reachable, none ordered),
   abandoning them, and planning their recovery in stage B. A tick is what the agents do on a
   tick minus the sends: ``pop_due`` on the partition's index, then ``apply_tick`` (stage A) or
   ``apply_due`` (stage B) for every entry due, and the reschedule. It is timed with 0 due and
   with 1,000 due, at several numbers pending (replicas of the real states beyond the first
   ``--real`` ones, which changes nothing for the index). Memory: serialized bytes per state (what
   a changelog message / RocksDB value holds) and Python heap bytes per state (tracemalloc; what
   the ``memory://`` store holds).
2. **Through the CLI** (``--worker N [N ...]``): ``cartbands worker`` (``--worker-store``,
   RocksDB by default) consumes N abandoned-to-be carts on the embedded broker with ticks up to
   the end of the input; its RSS growth divided by N is the memory per pending cart in a real
   worker (stage A + stage B state + Faust's and the store's bookkeeping), the state directory
   divided by N its disk. The worker is then stopped and started again on the same state
   directory: the time until both stages have processed one more tick round (which rebuilds
   every partition's timer index from its table) is the recovery time after a restart.

    python -m bench.timers [--pending 100000 1000000] [--worker 100000 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import shutil
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bench.events import Mix, generate, summarize
from bench.harness import (
    BenchError,
    append_ticks,
    fmt_rate,
    map_topic,
    quiet_clients,
    rss_bytes,
    table,
)
from bench.pipeline import (
    Input,
    Options,
    add_common,
    bench_context,
    measure_workers,
    options_from,
    prepare_pipeline,
    worker_log,
    worker_state,
)
from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery.checkout_state import CheckoutState, own_state
from recovery.ids import checkout_key
from recovery.policyset import PolicySet
from recovery.shopper_state import ShopperState, stored_shopper
from recovery.timer_index import TimerIndex
from schemas.codec import dumps
from schemas.shopper_events import CartAbandoned
from streams.app import DEV_CODE_SECRET

PENDING_MIX = Mix(abandon_rate=1.0, max_updates=1, no_contact_rate=0.0, repeat_shoppers=0.0)
PARTITION = 0


@dataclass
class States:
    """Real pending states of both stages, keyed as in the tables."""

    carts: dict[str, CheckoutState]  # store:checkout -> stage A state (open, deadline pending)
    shoppers: dict[str, ShopperState]  # store:shopper -> stage B state (plan, touch pending)
    build_seconds: float
    # store:checkout -> stage A state once abandoned (what it keeps while B's touches pend)
    abandoned: dict[str, CheckoutState] = field(default_factory=dict)


def build_states(count: int, policies: PolicySet, seed: int = 7) -> States:
    started = time.perf_counter()
    events = generate(count, seed, PENDING_MIX)
    carts: dict[str, CheckoutState] = {}
    shoppers: dict[str, ShopperState] = {}
    abandoned: dict[str, CheckoutState] = {}
    for event in events:
        key = checkout_key(event["store"], event["checkout"])
        policy = policies.for_store(event["store"])
        stored = carts.get(key)
        before = None if stored is None else own_state(stored)
        state, _ = stage_a.apply_event(before, stage_a.read_event(event), PARTITION, policy)
        carts[key] = state
        deadline = state.dl
        if deadline is None:
            continue
        # What stage B holds once this cart is abandoned: the shopper with a planned sequence.
        after, effects = stage_a.apply_tick(own_state(state), key, deadline)
        if after is not None:
            abandoned[key] = after
        for effect in effects:
            record = effect.record
            if effect.key and isinstance(record, CartAbandoned):
                shopper, _ = stage_b.apply_abandoned(
                    shoppers.get(effect.key), effect.key, record, PARTITION, policy
                )
                shoppers[effect.key] = shopper
    return States(carts, shoppers, time.perf_counter() - started, abandoned)


def heap_bytes(build: Callable[[], object]) -> tuple[object, int]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return built, after - before


def _deep_copy(states: dict[str, Any]) -> dict[str, Any]:
    """Fresh objects for every state, as a table decoding them from storage holds them."""
    return {key: _decoded(value) for key, value in states.items()}


def _decoded(state: Any) -> Any:
    found = orjson.loads(dumps(state))
    return own_state(found) if isinstance(state, CheckoutState) else stored_shopper(found)


@dataclass
class MemoryRow:
    what: str
    states: int
    serialized_mean: float
    serialized_p99: float
    heap_per_state: float


def memory_rows(states: States) -> list[MemoryRow]:
    rows = []
    for what, table_states in (
        ("stage A checkout (pending abandonment)", states.carts),
        ("stage A checkout (abandoned)", states.abandoned),
        ("stage B shopper (pending touches)", states.shoppers),
    ):
        sizes = sorted(len(dumps(s)) for s in table_states.values())
        # The heap a table of these states takes: a deep copy measured with tracemalloc.
        copied, heap = heap_bytes(partial(_deep_copy, table_states))
        del copied
        rows.append(
            MemoryRow(
                what,
                len(sizes),
                statistics.fmean(sizes) if sizes else 0.0,
                sizes[int(0.99 * (len(sizes) - 1))] if sizes else 0.0,
                heap / len(sizes) if sizes else 0.0,
            )
        )
    return rows


@dataclass
class TickRow:
    stage: str
    pending: int
    due: int
    micros: float  # median per tick

    @property
    def per_due(self) -> float | None:
        return self.micros / self.due if self.due else None


def _replicated(base: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` states: the real ones, then copies under new keys (same due times spread)."""
    out = dict(base)
    values = list(base.items())
    copy = 0
    while len(out) < count and values:
        key, state = values[copy % len(values)]
        out[f"{key}~{copy}"] = state
        copy += 1
    return out


def _seq(state: CheckoutState | ShopperState) -> int:
    return state.seq


def time_ticks(
    stage: str,
    table_states: dict[str, Any],
    due_of: Callable[[Any], float | None],
    apply: Callable[[Any, str, float], Any],
    due_counts: tuple[int, ...],
    repeats: int,
) -> list[TickRow]:
    """The agents' tick path (pop_due, apply, reschedule) with ``due`` entries due."""
    index = TimerIndex()
    entries = []
    for key, state in table_states.items():
        due = due_of(state)
        if due is not None:
            entries.append((due, _seq(state), key))
    index.rebuild(PARTITION, entries)
    ordered = sorted(due for due, _, _ in entries)
    rows = []

    def current(key: str) -> tuple[float | None, int] | None:
        state = table_states.get(key)
        return (due_of(state), _seq(state)) if state else None

    for due_count in due_counts:
        if due_count > len(ordered):
            continue
        # Replicas share due times, so a few more than asked may fall due: the row says how many.
        now = ordered[due_count - 1] if due_count else ordered[0] - 1.0
        samples = []
        found = 0
        for _ in range(repeats):
            started = time.perf_counter()
            popped = index.pop_due(PARTITION, now, current)
            for _due, key in popped:
                new = apply(table_states[key], key, now)
                if new is not None:
                    next_due = due_of(new)
                    if next_due is not None:
                        index.schedule(PARTITION, next_due, _seq(new), key)
            samples.append(time.perf_counter() - started)
            found = len(popped)
            if popped:  # put the index back as it was (untimed)
                index.rebuild(PARTITION, entries)
        rows.append(TickRow(stage, len(entries), found, 1e6 * statistics.median(samples)))
    return rows


def tick_rows(
    states: States,
    policies: PolicySet,
    pending: tuple[int, ...],
    due_counts: tuple[int, ...],
    repeats: int,
) -> list[TickRow]:
    rows: list[TickRow] = []

    def a_apply(state: CheckoutState, key: str, now: float) -> CheckoutState | None:
        return stage_a.apply_tick(own_state(state), key, now)[0]

    def b_due(state: ShopperState) -> float | None:
        return state.nd

    def b_apply(state: ShopperState, key: str, now: float) -> ShopperState | None:
        shopper = key.split("~", 1)[0]
        store = shopper.split(":", 1)[0]
        return stage_b.apply_due(state, shopper, now, policies.for_store(store), DEV_CODE_SECRET)[0]

    for count in pending:
        carts = _replicated(states.carts, count)
        rows += time_ticks("A", carts, stage_a.next_due, a_apply, due_counts, repeats)
        del carts
        shoppers = _replicated(states.shoppers, count)
        rows += time_ticks("B", shoppers, b_due, b_apply, due_counts, repeats)
        del shoppers
        gc.collect()
    return rows


REBUILT = re.compile(
    r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] "
    r"(?P<stage>checkout|shopper) timers of partition (?P<partition>\d+) rebuilt: "
    r"(?P<pending>\d+) pending"
)


@dataclass
class Rebuilds:
    """The agents' "timers of partition P rebuilt: N pending" lines of one worker start."""

    pending: dict[str, int]  # stage (checkout/shopper) -> pending timers, all partitions
    first: float | None  # seconds after the process start of the first and last such line
    last: float | None

    @classmethod
    def parse(cls, text: str, started_wall: float) -> Rebuilds:
        pending = {"checkout": 0, "shopper": 0}
        times: list[float] = []
        for line in text.splitlines():
            match = REBUILT.match(line)
            if not match:
                continue
            pending[match["stage"]] += int(match["pending"])
            # Faust's log format: local time, milliseconds after a comma.
            at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            times.append(at - started_wall)
        if not times:
            return cls(pending, None, None)
        return cls(pending, min(times), max(times))


@dataclass
class Restart:
    """The worker started again after a graceful stop, its state directory kept or wiped."""

    state: str  # "kept" (RocksDB reopened) or "wiped" (tables restored from the changelogs)
    stage_a: float | None = None  # seconds from the start until stage A committed the marker
    ready: float | None = None  # ... and stage B too (the forwarded ticks on shopper-events)
    rss: int = 0
    rebuilds: Rebuilds | None = None
    failure: str | None = None


@dataclass
class WorkerRun:
    """``cartbands worker`` filled with ``carts`` pending carts, stopped, and started again."""

    carts: int
    store: str
    fill_rate: float | None  # events/s of the first run
    rss_first: int  # RSS at the first progress commit of the first run
    rss_end: int  # ... and when it had committed everything
    disk_bytes: int  # the state directory after the first run stopped
    restarts: list[Restart]

    @property
    def per_cart(self) -> float:
        return (self.rss_end - self.rss_first) / self.carts if self.carts else 0.0

    @property
    def disk_per_cart(self) -> float:
        return self.disk_bytes / self.carts if self.carts else 0.0


def directory_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def crash_reason(text: str) -> str:
    """The first line of a worker's crash in its log (Faust logs ``Crashed reason=...``)."""
    for line in text.splitlines():
        if "reason=" in line:
            return line.split("reason=", 1)[1].strip()[:200]
    for line in reversed(text.splitlines()):
        if "Error" in line:
            return line.strip()[:200]
    return "the worker exited"


def worker_restart(options: Options, count: int, store: str) -> WorkerRun:
    """Fill a worker with ``count`` pending carts on ``store`` and stop it; then, for each of
    "kept" and "wiped" state directory, append one tick round at the last watermark (nothing
    falls due; every partition of both stages rebuilds its timer index from its table), start
    the worker again and time until it has committed that round."""
    events = generate(count, options.seed, PENDING_MIX)
    data = Input(events, summarize(events))
    del events
    stored = replace(options, worker_args=(*options.worker_args, f"--store={store}"))
    first_rss: dict[int, int] = {}

    def on_start(pids: list[int]) -> Callable[[], None]:
        def on_first() -> None:
            for pid in pids:
                first_rss[pid] = rss_bytes(pid) or 0

        return on_first

    restarts: list[Restart] = []
    with bench_context(stored) as bench:
        names, loaded, mapped = asyncio.run(prepare_pipeline(bench, data, stored.batch))
        del data
        fill = measure_workers(bench, names, mapped, 1, on_start=on_start)
        [(pid, rss_first)] = first_rss.items()
        state = worker_state(bench, names, 0)
        log = worker_log(bench, names, 0)
        disk = directory_bytes(state)
        for kept in (True, False):
            restart = Restart("kept" if kept else "wiped")
            restarts.append(restart)
            if not kept:
                shutil.rmtree(state, ignore_errors=True)
            before = log.stat().st_size if log.exists() else 0
            loaded = asyncio.run(
                append_ticks(bench.broker.bootstrap, loaded, loaded.last_tick or 0.0)
            )
            remapped = asyncio.run(map_topic(bench.broker.bootstrap, loaded))
            started_wall = time.time()
            try:
                again = measure_workers(bench, names, remapped, 1)
            except BenchError:
                restart.failure = crash_reason(log.read_bytes()[before:].decode(errors="replace"))
                continue
            restart.stage_a = again.wall
            if again.drained is not None:
                restart.ready = again.drained - again.started
            restart.rss = next(iter(again.rss.values()), 0)
            text = log.read_bytes()[before:].decode(errors="replace")
            restart.rebuilds = Rebuilds.parse(text, started_wall)
    return WorkerRun(
        carts=count,
        store=store,
        fill_rate=fill.rate,
        rss_first=rss_first,
        rss_end=fill.rss.get(pid, 0),
        disk_bytes=disk,
        restarts=restarts,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_workers(runs: list[WorkerRun]) -> str:
    fills = [
        [
            f"{run.carts:,}",
            run.store,
            fmt_rate(run.fill_rate),
            f"{run.rss_end / 2**20:,.0f}",
            fmt_rate(run.per_cart),
            fmt_rate(run.disk_per_cart),
        ]
        for run in runs
    ]
    restarts = []
    failures = []
    for run in runs:
        for restart in run.restarts:
            rebuilds = restart.rebuilds
            if restart.failure is not None:
                failures.append(f"{run.carts:,} carts, state {restart.state}: {restart.failure}")
            restarts.append(
                [
                    f"{run.carts:,}",
                    restart.state,
                    "CRASHED" if restart.failure else "ok",
                    _seconds(restart.stage_a),
                    _seconds(restart.ready),
                    f"{_seconds(rebuilds.first)} .. {_seconds(rebuilds.last)}" if rebuilds else "-",
                    f"{rebuilds.pending['checkout']:,} / {rebuilds.pending['shopper']:,}"
                    if rebuilds
                    else "-",
                    f"{restart.rss / 2**20:,.0f}" if restart.rss else "-",
                ]
            )
    lines = [
        table(("carts", "store", "fill events/s", "RSS MiB", "RSS B/cart", "disk B/cart"), fills),
        "",
        table(
            (
                "carts",
                "state dir",
                "restart",
                "A ready s",
                "A+B ready s",
                "index rebuilt s",
                "pending A / B",
                "RSS MiB",
            ),
            restarts,
        ),
        "",
        "fill: the worker consumes the carts (1 update each, all abandoned in time) with event-"
        "clock ticks; RSS B/cart: its RSS growth from the first progress commit to the end, per "
        "cart; disk: the state directory after a graceful stop. restart: the worker started "
        "again on its state directory (kept), then on none (wiped: tables restored from the "
        "changelogs), each time after one more tick round at the last watermark (nothing due); "
        "seconds from the process start until stage A, then stage B committed it (interpreter "
        "start-up and the group join, ~3 s on tansu, included); 'index rebuilt': first .. last "
        "'timers of partition P rebuilt' log line, whose pending counts are summed.",
    ]
    lines += [f"  {failure}" for failure in failures]
    for state in ("kept", "wiped"):
        done = [
            (run.carts, r.ready)
            for run in runs
            for r in run.restarts
            if r.state == state and r.ready is not None
        ]
        if len(done) >= 2:
            (low, low_s), (high, high_s) = done[0], done[-1]
            lines.append(
                f"restart with state {state}, ready at {high:,} carts / at {low:,} carts: "
                f"{high_s / low_s:.2f}x"
            )
    return "\n".join(lines)


def render(
    memory: list[MemoryRow],
    ticks: list[TickRow],
    states: States,
) -> str:
    lines = [
        f"timer scale (in process; {len(states.carts):,} real carts and "
        f"{len(states.shoppers):,} shoppers built in {states.build_seconds:.1f}s)",
        "",
        table(
            ("state", "count", "serialized bytes mean", "p99", "heap bytes/state"),
            [
                [
                    row.what,
                    f"{row.states:,}",
                    f"{row.serialized_mean:,.0f}",
                    f"{row.serialized_p99:,.0f}",
                    f"{row.heap_per_state:,.0f}",
                ]
                for row in memory
            ],
        ),
        "",
        table(
            ("stage", "pending", "due", "tick us (median)", "us per due"),
            [
                [
                    row.stage,
                    f"{row.pending:,}",
                    f"{row.due:,}",
                    f"{row.micros:,.1f}",
                    "-" if row.per_due is None else f"{row.per_due:,.1f}",
                ]
                for row in ticks
            ],
        ),
    ]
    for stage in ("A", "B"):
        zero = [r for r in ticks if r.stage == stage and r.due == 0]
        if len(zero) >= 2:
            low, high = zero[0], zero[-1]
            lines.append(
                f"stage {stage}: tick with 0 due at {high.pending:,} pending / at "
                f"{low.pending:,} pending = {high.micros / low.micros:.2f}x (flat = independent "
                "of pending)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timers", description=(__doc__ or "").split("\n")[0]
    )
    add_common(parser)
    parser.add_argument("--real", type=int, default=100_000, help="real states built")
    parser.add_argument("--pending", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--due", type=int, nargs="+", default=[0, 1_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--worker",
        type=int,
        nargs="*",
        default=[],
        help="also run `cartbands worker` with these many pending carts (RSS, restart time)",
    )
    parser.add_argument("--worker-store", default="rocksdb://", help="table store of --worker")
    # The worker runs are about state, not the wire: batched input fills them faster.
    parser.set_defaults(batch=[100])
    args = parser.parse_args(argv)
    quiet_clients()
    policies = load_policy(args.policy)
    states = build_states(args.real, policies, args.seed)
    memory = memory_rows(states)
    ticks = tick_rows(states, policies, tuple(args.pending), tuple(args.due), args.repeats)
    print(render(memory, ticks, states), flush=True)
    del states
    gc.collect()
    workers = [worker_restart(options_from(args), n, args.worker_store) for n in args.worker]
    if workers:
        print()
        print(f"cartbands worker, {args.worker_store} store")
        print(render_workers(workers))


if __name__ == "__main__":
    main()
