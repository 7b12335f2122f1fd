"""``python -m bench``: the stream benchmarks in one go, each printing its table.

1. pipeline throughput (bench.pipeline): the worker on single-event messages and on batched
   messages, against the naive Faust agent and raw aiokafka consume + orjson, one broker;
2. scale-out (bench.scaleout): 1 vs 2 workers in one group on the same input.

``--quick`` uses 10,000 events (a smoke run: figures are rougher, start-up weighs more).
``--all`` also runs the other engineers' benchmarks, bench.core_bench and bench.gateway_bench,
with their own defaults.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import pipeline, scaleout
from bench.harness import ROOT, quiet_clients

OTHERS = ("bench.core_bench", "bench.gateway_bench")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n")[0]
    )
    pipeline.add_common(parser)
    parser.add_argument("--quick", action="store_true", help="10,000 events")
    parser.add_argument("--batched", type=int, default=100, help="records/message of run 2")
    parser.add_argument("--no-scaleout", action="store_true")
    parser.add_argument("--all", action="store_true", help="also core and gateway benchmarks")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 10_000
    if args.batch == [1] and args.batched > 1:
        args.batch = [1, args.batched]
    quiet_clients()
    started = time.monotonic()
    options = pipeline.options_from(args, raw_runs=1 if args.quick else 3)
    print(pipeline.run(options).render(), flush=True)
    if not args.no_scaleout:
        print(flush=True)
        print(scaleout.run(pipeline.options_from(args)).render(), flush=True)
    if args.all:
        for module in OTHERS:
            print(f"\n$ python -m {module}", flush=True)
            subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False)
    print(f"\nsuite finished in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
