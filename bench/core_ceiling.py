"""The pure core's rate on a pipeline benchmark's own input: the ceiling of a worker.

A worker runs the recovery core on every event and, besides, decodes, stores, encodes and
produces. The core alone (``recovery.simulate``: stage A, stage B and the same tick rounds, in
one process, no Kafka, and no drain after the last event, since the worker's input ends with
its last tick round) is therefore an upper bound of the worker's events per CPU second, and
``core alone / naive Faust`` bounds ``pipeline / naive Faust`` for a worker that uses one core.
``bench.pipeline`` prints both beside each other.

The replay runs in a child process (``python -P`` this file, the events in a JSON-lines file),
so it starts on a clean heap, and under ``--worker-root`` it replays the other checkout's core.
Its rate is events per CPU second of the replay alone (``time.process_time``), with the worker's
GC thresholds and the input frozen out of the collector's generations, as ``bench.core_bench``.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bench.events import read_ndjson, write_ndjson

if TYPE_CHECKING:
    from recovery.policyset import PolicySet
    from recovery.simulate import Simulation

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"bench-secret"


@dataclass(frozen=True)
class CoreRun:
    """One replay of the input through the pure core."""

    events: int
    cpu_seconds: float
    touches: int
    core: str  # which core ran: pure Python or compiled (cartbands.runtime.describe_core)

    @property
    def rate(self) -> float | None:
        """Events per CPU second."""
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else None


def replay(
    events: list[dict[str, Any]], policy: Path, tick_step: float, root: Path | None = None
) -> CoreRun:
    """Replay ``events`` in a child process running the core of ``root`` (default: this one)."""
    with tempfile.TemporaryDirectory(prefix="cartbands-core-") as scratch:
        source = Path(scratch) / "events.jsonl"
        write_ndjson(events, source)
        path = os.pathsep.join(str(p) for p in (root, ROOT) if p is not None)
        done = subprocess.run(
            [sys.executable, "-P", str(Path(__file__).resolve()), str(source),
             "--policy", str(policy), "--tick-step", repr(tick_step)],
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"core replay failed: {done.stderr.decode(errors='replace')[-2000:]}")
    found = orjson.loads(done.stdout.splitlines()[-1])
    return CoreRun(found["events"], found["cpu_seconds"], found["touches"], found["core"])


def timed_replay(
    events: list[dict[str, Any]], policies: PolicySet, **options: float
) -> tuple[float, Simulation]:
    """``(CPU seconds, Simulation)`` of ``events`` replayed through ``recovery.simulate``
    (``options``: its tick_step, drain). Each event is read at the edge, before the clock
    starts, as the worker's agent reads a message (a cart event straight into its struct,
    anything else as its record): the core is timed on what the agent hands it. The input
    is frozen out of the collector's generations while it runs: it is the benchmark's
    fixture, not heap the core's GC scans."""
    from recovery.checkouts import epoch
    from recovery.simulate import simulate
    from schemas.cart_events import cart_event_of

    timed = [
        (epoch(event["occurred_at"], "occurred_at"), cart_event_of(orjson.dumps(event)) or event)
        for event in events
    ]
    gc.collect()
    gc.freeze()
    begin = time.process_time()
    sim = simulate(timed, policies, lambda store: SECRET, **options)
    elapsed = time.process_time() - begin
    gc.unfreeze()
    return elapsed, sim


def _replay_here(source: Path, policy: Path, tick_step: float) -> dict[str, Any]:
    from cartbands.runtime import describe_core, tune_gc
    from config.policyfile import load_policy

    tune_gc()
    events = read_ndjson(source)
    elapsed, sim = timed_replay(events, load_policy(policy), tick_step=tick_step, drain=0.0)
    return {
        "events": len(events),
        "cpu_seconds": elapsed,
        "touches": len(sim.touches),
        "core": describe_core(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="cart events, one JSON object per line")
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--tick-step", type=float, required=True, help="event-time seconds")
    args = parser.parse_args(argv)
    print(orjson.dumps(_replay_here(args.source, args.policy, args.tick_step)).decode())


if __name__ == "__main__":
    main()
