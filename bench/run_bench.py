"""Wall time of ``make run``'s month: ``cartbands run`` on the demo store, end to end.

``python -m bench.run_bench [--repeat 1]`` runs ``python -m cartbands run`` (embedded broker,
gateway, worker, senders; a month of the seed-000 store posted and replayed in event time, then
the ledger, the report and the what-if) as a user does, and prints the wall seconds of each run,
the best, and the events the run posted. Fails if the run fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.harness import ROOT


def once() -> tuple[float, str]:
    begin = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cartbands", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - begin
    if result.returncode != 0:
        raise SystemExit(f"cartbands run failed:\n{result.stderr[-2000:]}")
    posted = next(
        (ln.rsplit(":", 1)[1].strip() for ln in result.stdout.splitlines()
         if ln.startswith("events in through the gateway")),
        "?",
    )  # fmt: skip
    return seconds, posted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    times = []
    posted = "?"
    for _ in range(args.repeat):
        seconds, posted = once()
        times.append(seconds)
        print(f"cartbands run (demo month): {seconds:.1f} s wall, {posted} events posted")
    print(f"best of {len(times)}: {min(times):.1f} s")


if __name__ == "__main__":
    main()
