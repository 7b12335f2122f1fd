"""The core compiled with mypyc (``CARTBANDS_MYPYC=1``) behaves exactly like the Python one.

Each test computes its result in this process and again in a child process that imports the
core from the source tree, i.e. as Python. Under ``make test-compiled`` this process runs the
compiled wheel (tests/conftest.py stops the session otherwise), so the two sides are the two
builds; under ``make test`` both are Python, which still checks that the results do not depend
on the process (hash seeds, caches, import order).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench.events import generate
from cartbands.runtime import compiled_core
from config.policyfile import load_policy
from recovery.checkouts import epoch
from recovery.simulate import Simulation, boundaries, drain_ticks, simulate
from schemas import codec

ROOT = Path(__file__).resolve().parents[2]
EXPECT_COMPILED = os.environ.get("CARTBANDS_EXPECT_COMPILED_CORE") == "1"
SECRET = b"compiled-core-test"
# values JSON can carry where the core expects something else
JUNK: list[Any] = [None, 0, -1, 2.5, True, "", "x", "12.50", "-3", "2026-13-01", [], {}, ["a"]]


def _digest(records: Any) -> str:
    data = orjson.dumps(records, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()


def replay_digests() -> dict[str, Any]:
    """``bench.events.generate(20000, 7)`` replayed through stage A, stage B and the ticks."""
    timed = [(epoch(e["occurred_at"], "occurred_at"), e) for e in generate(20_000, 7)]
    sim = simulate(timed, load_policy(), lambda store: SECRET)
    return {
        "touches": [len(sim.touches), _digest(sim.touches)],
        "recoveries": [len(sim.recoveries), _digest(sim.recoveries)],
        "rejected": [len(sim.rejected), _digest(sim.rejected)],
        "counts": sim.counts,
        "state": [_digest(sim.carts), _digest(sim.shoppers)],
    }


def _as_stored(tables: dict[str, dict[str, Any]], stored: dict[str, Any]) -> None:
    """Each state written since the last call replaced by its JSON round trip (the worker's
    codec), as a RocksDB table or a changelog restore hands it back: lists for tuples, strings
    for Decimals and datetimes."""
    for key, state in tables.items():
        if stored.get(key) is not state:
            tables[key] = stored[key] = codec.loads(codec.dumps(state))


def replay_digests_stored_state() -> dict[str, Any]:
    """As :func:`replay_digests` (8,000 events), every state read back from JSON in between."""
    timed = [(epoch(e["occurred_at"], "occurred_at"), e) for e in generate(8_000, 5)]
    sim = Simulation(load_policy(), lambda store: SECRET)
    stored_carts: dict[str, Any] = {}
    stored_shoppers: dict[str, Any] = {}
    watermark = timed[0][0]
    for tick_at, chunk in boundaries(timed, 300.0):
        if tick_at is not None:
            sim.tick(tick_at)
            watermark = tick_at
        for event in chunk:
            sim.event(event)
        _as_stored(sim.carts, stored_carts)
        _as_stored(sim.shoppers, stored_shoppers)
    for now in drain_ticks(watermark, timed[-1][0], 8 * 86400.0):
        sim.tick(now)
        _as_stored(sim.carts, stored_carts)
        _as_stored(sim.shoppers, stored_shoppers)
    return {
        "touches": [len(sim.touches), _digest(sim.touches)],
        "recoveries": [len(sim.recoveries), _digest(sim.recoveries)],
        "counts": sim.counts,
    }


def _mutants(event: dict[str, Any], rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Copies of ``event`` with one field (top level or nested) wrong or missing."""
    out = []
    for _ in range(count):
        mutant = copy.deepcopy(event)
        parent: Any = mutant
        nested = [key for key in ("contact", "shipping_address", "line_items") if mutant.get(key)]
        if nested and rng.random() < 0.5:
            parent = mutant[rng.choice(nested)]
            if isinstance(parent, list):
                parent = rng.choice(parent)
        key = rng.choice(sorted(parent))
        if rng.random() < 0.15:
            del parent[key]
        else:
            parent[key] = copy.deepcopy(rng.choice(JUNK))
        out.append(mutant)
    return out


def _shopper_records(sim: Simulation, at: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """A consent change and a redaction (as the gateway sends them) for a known shopper."""
    key = sorted(sim.shoppers)[n % len(sim.shoppers)]
    store = key.partition(":")[0]
    consent: dict[str, Any] = {"type": "consent_changed", "store": store, "event_id": f"c{n}"}
    consent["occurred_at"] = at
    consent.update(channel=("email", "sms", "all")[n % 3], granted=n % 2 == 0, source="sms")
    redacted = {"type": "shopper_redacted", "store": store, "event_id": f"r{n}", "occurred_at": at}
    return [(key, consent), (key, redacted)]


def _outcome(action: Any, *args: Any) -> str:
    try:
        action(*args)
    except Exception as exc:  # the agents catch everything: what matters is what is raised
        return f"raised {type(exc).__name__}: {exc}"
    return "ok"


def malformed_outcomes() -> list[str]:
    """Generated events each followed by wrong-typed copies, as the agents feed the core (and
    now and then a shopper's consent change or redaction, also mangled): what each record did
    or raised, then the drained ticks, the rejections and the outputs."""
    rng = random.Random(11)
    sim = Simulation(load_policy(), lambda store: SECRET)
    outcomes = []
    last = 0.0
    for n, event in enumerate(generate(1_500, 11)):
        last = epoch(event["occurred_at"], "occurred_at")
        for variant in [event, *_mutants(event, rng, 3)]:
            outcomes.append(_outcome(sim.event, variant))
        if n % 25 == 24 and sim.shoppers:
            for key, record in _shopper_records(sim, event["occurred_at"], n):
                for variant in [*_mutants(record, rng, 2), record]:
                    outcomes.append(_outcome(sim.shopper_events, [variant], key))
    for now in drain_ticks(last, last, 8 * 86400.0):
        try:
            sim.tick(now)
            outcomes.append("tick ok")
        except Exception as exc:
            outcomes.append(f"tick raised {type(exc).__name__}: {exc}")
    outcomes.extend(f"rejected: {reason}" for _, reason in sim.rejected)
    outcomes.append(f"touches {_digest(sim.touches)} recoveries {_digest(sim.recoveries)}")
    return outcomes


def in_python(function: str) -> Any:
    """``function()`` of this module in a child process running the core from the sources."""
    env = {k: v for k, v in os.environ.items() if k != "CARTBANDS_EXPECT_COMPILED_CORE"}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import json, sys\n"
        "from cartbands.runtime import compiled_core\n"
        "from tests.recovery import test_compiled_core as module\n"
        f"result = module.{function}()\n"
        "json.dump({'compiled': compiled_core(), 'result': result}, sys.stdout)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["compiled"] is False, "the reference run must import the Python sources"
    return answer["result"]


def test_this_process_runs_the_expected_build() -> None:
    assert compiled_core() is EXPECT_COMPILED


def test_replay_is_byte_identical_to_the_python_core() -> None:
    here = json.loads(json.dumps(replay_digests()))
    assert here["touches"][0] > 900 and here["recoveries"][0] > 100
    assert here == in_python("replay_digests")


def test_replay_on_stored_state_is_identical_to_the_python_core() -> None:
    here = json.loads(json.dumps(replay_digests_stored_state()))
    assert here["touches"][0] > 300 and here["recoveries"][0] > 30
    assert here == in_python("replay_digests_stored_state")


def test_malformed_events_fail_the_same_way_as_in_the_python_core() -> None:
    here = malformed_outcomes()
    reference = in_python("malformed_outcomes")
    differing = [
        (index, mine, theirs)
        for index, (mine, theirs) in enumerate(zip(here, reference, strict=False))
        if mine != theirs
    ]
    assert not differing and len(here) == len(reference), differing[:5]
    rejected = sum(outcome.startswith("rejected: ") for outcome in here)
    assert rejected > 500  # the mutants reach the validation paths
