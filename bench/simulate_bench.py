"""Throughput of ``cartbands simulate``: events per CPU second through the core.

``python -m bench.simulate_bench [--months 3] [--repeat 3]`` generates seed 000's store
(recovery/storemodel.py) and runs it through :func:`recovery.whatif.run` for the default and
the flat policy: every cart event and every order the response model sends back go through
stages A and B, ticked every 5 minutes in event time and drained 10 days. The peer is the same
cart events replayed through :func:`recovery.simulate.simulate` with the same tick step and
drain (the core alone, no shoppers answering): the ratio says what the what-if layer costs on
top of the core. CPU seconds of this process, best of ``--repeat``; the input is frozen out of
the collector while timed, as in bench.core_bench.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cartbands.runtime import describe_core, tune_gc
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.response import ResponseModel
from recovery.simulate import DAY, simulate
from recovery.storemodel import StoreModel, generate
from recovery.whatif import TICK, run, with_margin

FLAT = DEFAULT_POLICY.parent / "flat.yaml"
SECRET = b"bench-secret"


def _best(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        gc.freeze()
        begin = time.process_time()
        result = work()
        best = min(best, time.process_time() - begin)
        gc.unfreeze()
    return best, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate_bench")
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tune_gc()
    store = StoreModel()
    traffic = generate(store, args.seed, args.months, datetime(2026, 9, 1, tzinfo=UTC))
    rows = []
    for path in (DEFAULT_POLICY, FLAT):
        policies = with_margin(load_policy(path), store.gross_margin)

        def core_alone(policies: Any = policies) -> Any:
            return simulate(traffic, policies, lambda _s: SECRET, tick_step=TICK, drain=10 * DAY)

        def what_if(policies: Any = policies) -> Any:
            return run(policies, traffic, ResponseModel(), args.seed, lambda _s: SECRET)

        base_s, base = _best(args.repeat, core_alone)
        sim_s, result = _best(args.repeat, what_if)
        rows.append((path.stem, len(traffic), base_s, len(base.touches), result.events, sim_s,
                     len(result.sim.touches), len(result.sim.recoveries)))  # fmt: skip
    print(f"core: {describe_core()}; {args.months} month(s) of seed 000's store, "
          f"{len(traffic)} abandoned carts, best of {args.repeat}")  # fmt: skip
    print()
    print("| policy | core alone: events/cpu-s (cpu s, touches) | simulate: events/cpu-s "
          "(cpu s; events incl. orders, touches, recoveries) | ratio |")  # fmt: skip
    print("|---|---|---|---|")
    for name, carts, base_s, base_touches, events, sim_s, touches, recoveries in rows:
        base_rate, sim_rate = carts / base_s, events / sim_s
        print(f"| {name} | {base_rate:,.0f} ({base_s:.2f}, {base_touches}) | {sim_rate:,.0f} "
              f"({sim_s:.2f}; {events}, {touches}, {recoveries}) | "
              f"**{sim_rate / base_rate:.2f}x** |")  # fmt: skip


if __name__ == "__main__":
    main()
