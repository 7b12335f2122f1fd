"""Scale-out: 1 vs 2 ``cartbands worker`` processes in one consumer group on the same input.

Both runs get the same generated events on their own topic prefix (so neither sees the other's
output) and are measured the same way as bench/pipeline.py (from the first progress commit to the
commit at the end of every partition). On a 2-core machine the broker and this process share the
cores with the workers, so the honest expectation is well below 2x: the table shows the CPU the
workers and the broker actually got, which explains the figure.

    python -m bench.scaleout [--events 100000] [--batch 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.harness import BenchError, Progress, fmt_rate, fmt_share, quiet_clients, table
from bench.pipeline import (
    Options,
    add_common,
    bench_context,
    make_input,
    measure_workers,
    options_from,
    prepare_pipeline,
)


@dataclass
class ScaleReport:
    options: Options
    events: int
    runs: dict[int, Progress]
    failures: dict[int, str]

    def render(self) -> str:
        rows = []
        for count, progress in sorted(self.runs.items()):
            share = progress.cpu_share()
            rows.append(
                [
                    str(count),
                    fmt_rate(progress.rate),
                    fmt_rate(None if progress.rate is None else progress.rate / count),
                    fmt_rate(progress.end_to_end),
                    f"{progress.window:.2f}",
                    fmt_share(share),
                    fmt_share(progress.broker_share()),
                    fmt_rate(progress.per_cpu_second()),
                ]
            )
        lines = [
            f"scale-out, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs",
            f"input: {self.events:,} events, {self.options.partitions} partitions, "
            f"{'1 event' if self.options.batch == 1 else f'{self.options.batch} records'}"
            "/message",
            "",
            table(
                (
                    "workers",
                    "events/s",
                    "per worker",
                    "end to end",
                    "window s",
                    "workers cpu",
                    "broker cpu",
                    "events/cpu-s",
                ),
                rows,
            ),
            "",
        ]
        one, two = self.runs.get(1), self.runs.get(2)
        if one is not None and two is not None and one.rate and two.rate is not None:
            speedup = two.rate / one.rate
            lines.append(f"2 workers / 1 worker: {speedup:.2f}x")
        for count, reason in sorted(self.failures.items()):
            lines.append(f"{count} worker(s) NOT MEASURED: {reason}")
        lines.append(
            "cpu columns are cores used during the measured window (the machine has "
            f"{os.cpu_count()}); 'end to end' waits for stage B to commit shopper-events too."
        )
        return "\n".join(lines)


def run(options: Options, counts: tuple[int, ...] = (1, 2)) -> ScaleReport:
    data = make_input(options)
    runs: dict[int, Progress] = {}
    failures: dict[int, str] = {}
    with bench_context(options) as bench:
        for count in counts:
            names, _loaded, mapped = asyncio.run(prepare_pipeline(bench, data, options.batch))
            try:
                runs[count] = measure_workers(bench, names, mapped, count)
            except BenchError as exc:
                failures[count] = str(exc)
    return ScaleReport(options, data.summary.events, runs, failures)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaleout", description=(__doc__ or "").split("\n")[0]
    )
    add_common(parser)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare"
    )
    args = parser.parse_args(argv)
    quiet_clients()
    print(run(options_from(args), tuple(args.workers)).render())


if __name__ == "__main__":
    main()
