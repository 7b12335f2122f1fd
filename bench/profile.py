"""Where a worker's time goes: py-spy samples of ``cartbands worker`` under benchmark load.

Starts the same setup as bench/pipeline.py (broker, preloaded input, worker processes) and,
once the group commits progress, attaches ``py-spy record --idle`` to every worker for
``--seconds``. Prints the share of samples per package, the top frames by own time and by
inclusive time. Needs the ``py-spy`` binary (``pip install py-spy``; not a project dependency:
nothing imports it). ``--out DIR`` keeps the collapsed stacks (input for any flame-graph tool).

    python -m bench.profile [--events 100000] [--seconds 20] [--workers 1] [--naive]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import BenchError, quiet_clients, table
from bench.pipeline import (
    Options,
    add_common,
    bench_context,
    make_input,
    measure_naive,
    measure_workers,
    options_from,
    prepare_pipeline,
)

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise BenchError("py-spy not found: pip install py-spy")
    return found


NATIVE_WAITS = ("epoll_wait", "poll", "select", "pthread_cond_", "sem_", "futex", "nanosleep")


def _is_python(frame: str) -> bool:
    return ".py:" in frame or frame.endswith(".py)") or "<frozen" in frame


def _is_idle(stack: tuple[str, ...]) -> bool:
    """A thread waiting in the event loop's selector (or a lock): its innermost Python frame
    is the wait, or (``--native`` stacks) a C frame below it is a blocking call."""
    for frame in reversed(stack):
        name = frame.split(" (", 1)[0]
        if not _is_python(frame):
            if name.startswith(NATIVE_WAITS):
                return True
            continue
        return name.endswith(("Selector.select", ".select", ".poll", "wait")) and (
            "selectors" in frame or "threading" in frame
        )
    return False


@dataclass
class Stacks:
    """Collapsed stacks (``frame;frame;... count``) as py-spy's raw format writes them,
    recorded with ``--threads`` (the root frame names the thread)."""

    stacks: Counter[tuple[str, ...]]

    @classmethod
    def read(cls, paths: Iterable[Path]) -> Stacks:
        stacks: Counter[tuple[str, ...]] = Counter()
        for index, path in enumerate(paths):
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    frames = stack.split(";")
                    if frames[0].startswith("thread ("):
                        frames[0] = f"w{index} {frames[0]}"
                    else:
                        frames.insert(0, f"w{index} thread (?)")
                    stacks[tuple(frames)] += int(count)
        return cls(stacks)

    @property
    def total(self) -> int:
        return sum(self.stacks.values())

    def threads(self) -> list[tuple[str, str, int, int]]:
        """``(thread, role, samples, idle samples)``, busiest first."""
        samples: Counter[str] = Counter()
        idle: Counter[str] = Counter()
        roles: dict[str, str] = {}
        for stack, count in self.stacks.items():
            thread = stack[0]
            samples[thread] += count
            if len(stack) > 1 and _is_idle(stack[1:]):
                idle[thread] += count
            if thread not in roles and len(stack) > 1:
                roles[thread] = _role(stack[1:])
        rows = [(t, roles.get(t, "?"), samples[t], idle[t]) for t in samples]
        return sorted(rows, key=lambda row: row[2] - row[3], reverse=True)

    def busy(self, thread: str) -> Stacks:
        """The thread's samples that were not waiting in the selector."""
        return Stacks(
            Counter(
                {
                    stack[1:]: count
                    for stack, count in self.stacks.items()
                    if stack[0] == thread and len(stack) > 1 and not _is_idle(stack[1:])
                }
            )
        )

    def own(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            if stack:
                out[short(stack[-1])] += count
        return out

    def inclusive(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            for frame in {short(frame) for frame in stack}:
                out[frame] += count
        return out

    def packages(self) -> Counter[str]:
        """Own time per package of the innermost frame (faust, aiokafka, recovery, ...)."""
        out: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            if stack:
                out[package(stack[-1])] += count
        return out


# Where a worker's time goes, by what the code is doing: the first category (in this order)
# any frame of a sample's stack matches. Substrings of ``func (path)`` frames.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cyclic GC (--native only)", ("gc_collect_main",)),
    ("metrics: prometheus_client, telemetry, agents/metering",
     ("prometheus_client", "telemetry/", "agents/metering")),
    ("table writes: Table.on_key_set -> changelog send",
     ("Table.on_key_set", "send_changelog", "ManagedUserDict.__setitem__")),
    ("record sends: Topic.send/publish_message (emit, forwarded ticks, touches)",
     ("Topic.send ", "Topic.publish_message", "Topic.send_soon", "Channel._send_now",
      "Channel.as_future_message")),
    ("message decode: Faust codec -> orjson", ("Codec.loads", "Registry.loads_value")),
    ("stage A core: recovery/checkouts, valuation, money",
     ("recovery/checkouts", "recovery/checkout_stage", "recovery/valuation", "recovery/money",
      "recovery/policy_tables", "recovery/bands")),
    ("stage B core: recovery/shoppers, plan, decide, ...", ("recovery/",)),
    ("agents glue: agents/carts, shoppers, timers", ("agents/",)),
    ("producer: ProducerBuffer, aiokafka sender", ("ProducerBuffer", "aiokafka/producer")),
    ("consumer: Faust stream/consumer/conductor, aiokafka fetcher",
     ("faust/transport/consumer", "faust/transport/conductor", "faust/streams",
      "aiokafka/consumer", "Service.wait_first")),
    ("aiokafka connection and protocol", ("aiokafka/",)),
)  # fmt: skip
OTHER = "event loop and the rest"


def categorize(stacks: Stacks) -> Counter[str]:
    """Samples per CATEGORIES entry (each sample counted once), the rest under OTHER."""
    out: Counter[str] = Counter()
    for stack, count in stacks.stacks.items():
        frames = [short(frame) for frame in stack]
        for name, keys in CATEGORIES:
            if any(key in frame for key in keys for frame in frames):
                out[name] += count
                break
        else:
            out[OTHER] += count
    return out


def _role(stack: tuple[str, ...]) -> str:
    for frame in stack:
        if "WorkerThread.run" in frame or "ServiceThread" in frame:
            return "mode service thread (" + short(frame) + ")"
    # With --native the outermost frames are C (libc) ones: look for Python's entry point.
    return "main (event loop)" if any("runpy" in frame for frame in stack) else short(stack[0])


def short(frame: str) -> str:
    """``func (pkg/module.py:line)`` -> ``func (pkg/module.py)`` (lines merged)."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return f"{match['func']} ({path})"


def package(frame: str) -> str:
    name = short(frame)
    match = re.search(r"\(([^()]*)\)$", name)
    path = match.group(1) if match else name
    if path.startswith("stdlib/"):
        parts = path.split("/")
        return f"stdlib {parts[1].removesuffix('.py')}" if len(parts) > 1 else "stdlib"
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") or "?"


def top(counter: Counter[str], total: int, limit: int) -> list[list[str]]:
    return [[f"{100.0 * count / total:5.1f}%", name] for name, count in counter.most_common(limit)]


def render(stacks: Stacks, limit: int, workers: int, seconds: float) -> str:
    total = stacks.total
    if not total:
        return "no samples (py-spy could not attach, or the worker finished first)"
    threads = stacks.threads()
    lines = [
        f"py-spy profile of {workers} worker(s), {seconds:.0f}s, {total:,} samples",
        "",
        table(
            ("thread", "role", "samples", "busy"),
            [
                [thread, role, f"{count:,}", f"{100.0 * (count - idle) / count:.0f}%"]
                for thread, role, count, idle in threads
            ],
        ),
    ]
    thread = threads[0][0]
    busy = stacks.busy(thread)
    if not busy.total:
        return "\n".join(lines)
    loops = {name for name, count in busy.inclusive().items() if count >= 0.8 * busy.total}
    inclusive = Counter({k: v for k, v in busy.inclusive().items() if k not in loops})
    lines += [
        "",
        f"busiest thread {thread}: {busy.total:,} busy samples; shares below are of those",
        "",
        "what the busy thread was doing (each sample in the first matching category)",
        table(
            ("share", "category"),
            [
                [f"{100.0 * count / busy.total:5.1f}%", name]
                for name, count in sorted(
                    categorize(busy).items(), key=lambda item: item[1], reverse=True
                )
            ],
        ),
        "",
        "own time by package (innermost frame)",
        table(("share", "package"), top(busy.packages(), busy.total, 15)),
        "",
        "top frames by own time",
        table(("share", "frame"), top(busy.own(), busy.total, limit)),
        "",
        "top frames by inclusive time (plumbing frames above 80% left out)",
        table(("share", "frame"), top(inclusive, busy.total, limit)),
    ]
    return "\n".join(lines)


def profiler(
    out_dir: Path, seconds: float, rate: int, native: bool = False
) -> tuple[Callable[[list[int]], Callable[[], None]], list[subprocess.Popen[bytes]], list[Path]]:
    """A hook for measure_workers: start py-spy on each worker at the first progress commit."""
    spies: list[subprocess.Popen[bytes]] = []
    outputs: list[Path] = []
    binary = py_spy()

    def on_start(pids: list[int]) -> Callable[[], None]:
        def on_first() -> None:
            for index, pid in enumerate(pids):
                path = out_dir / f"worker-{index}.txt"
                outputs.append(path)
                command = [
                    binary, "record", "--pid", str(pid), "--idle", "--threads",
                    "--rate", str(rate), "--duration", str(int(seconds)),
                    "--format", "raw", "--output", str(path),
                    # Native stacks need the process paused at each sample (slower under test).
                    *(["--native"] if native else ["--nonblocking"]),
                ]  # fmt: skip
                spies.append(
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )

        return on_first

    return on_start, spies, outputs


def run(
    options: Options,
    seconds: float,
    rate: int,
    workers: int,
    out: Path | None,
    limit: int,
    native: bool = False,
    naive: bool = False,
) -> str:
    data = make_input(options)
    scratch = Path(tempfile.mkdtemp(prefix="cartbands-profile-"))
    out_dir = out or scratch
    out_dir.mkdir(parents=True, exist_ok=True)
    on_start, spies, outputs = profiler(out_dir, seconds, rate, native)
    try:
        with bench_context(options) as bench:
            if naive:  # bench/naive_faust.py on one event per message, no ticks
                topic = f"{bench.fresh('single')}-cart-events"
                loaded, mapped = asyncio.run(bench.load(data, topic, 1, ticks=False))
                progress = measure_naive(bench, loaded, mapped, on_start=on_start)
            else:
                names, _loaded, mapped = asyncio.run(prepare_pipeline(bench, data, options.batch))
                progress = measure_workers(bench, names, mapped, workers, on_start=on_start)
        for spy in spies:
            try:
                spy.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        stacks = Stacks.read(outputs)
        report = render(stacks, limit, workers, min(seconds, progress.window))
        if progress.window < seconds:
            report += (
                f"\nnote: the input was consumed in {progress.window:.1f}s, before the "
                f"{seconds:.0f}s profile ended; samples after that are mostly idle (more --events)."
            )
        if out is not None:
            report += f"\ncollapsed stacks: {', '.join(str(p) for p in outputs)}"
        return report
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait()
        if out is None:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=(__doc__ or "").split("\n")[0]
    )
    add_common(parser)
    parser.add_argument("--seconds", type=float, default=20.0, help="sampling duration")
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--top", type=int, default=25, help="frames listed")
    parser.add_argument("--out", type=Path, default=None, help="keep the collapsed stacks here")
    parser.add_argument(
        "--native",
        action="store_true",
        help="also sample C frames (e.g. the garbage collector, orjson), py-spy --native",
    )
    parser.add_argument(
        "--naive",
        action="store_true",
        help="profile the naive Faust reference (bench/naive_faust.py) instead of the worker",
    )
    args = parser.parse_args(argv)
    quiet_clients()
    options = options_from(args)
    report = run(
        options, args.seconds, args.rate, args.workers, args.out, args.top, args.native, args.naive
    )
    print(report)


if __name__ == "__main__":
    main()
