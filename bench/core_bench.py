"""Throughput of the pure recovery core: plans/s, due-touch decisions/s, replayed events/s.

``python -m bench.core_bench [--carts N] [--events M] [--profile]`` builds N deterministic
abandoned carts (totals spread across the default bands, shoppers in several US and European
zones, mixed consents and profiles with recent sends), then times
:func:`recovery.plan.plan_recovery` over all of them and :func:`recovery.decide.decide_touch`
over every planned touch at its due time and at a second, later moment (through quiet hours,
gaps and caps); then replays M generated cart events through
:func:`recovery.simulate.simulate` (stage A, stage B, ticks: the whole pipeline in one
process). No Kafka, no I/O: this is the ceiling the stream can reach per core; the target of
issue 7 (>= 100k events/s) is checked on the replayed events. ``--profile`` prints the hottest
functions.

Times are CPU seconds of this process (``time.process_time``), best of ``--repeat`` runs, so
a busy machine skews the rates less; wall-clock rates are lower by the machine's contention.
The process runs with the worker's GC thresholds (``--default-gc`` for Python's), and the
replayed input is frozen out of the collector's generations while it is timed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.core_ceiling import timed_replay
from bench.events import generate
from cartbands.runtime import describe_core, tune_gc
from config.policyfile import load_policy
from recovery.decide import decide_touch
from recovery.ids import shopper_key
from recovery.model import Cart, ContactInfo, Item, Plan, Profile
from recovery.plan import plan_recovery
from recovery.policy import StorePolicy
from recovery.policyset import PolicySet
from recovery.simulate import Simulation

TARGET = 100_000
SECRET = b"bench-secret"
PHONES = [
    "+14155550100", "+12125550100", "+13125550100", "+13055550100", "+17205550100",
    "+4915112345678", "+447700900123", "+33612345678", None,
]  # fmt: skip


def make_inputs(count: int, seed: int = 7) -> list[tuple[Profile, Cart, str]]:
    rng = random.Random(seed)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    out = []
    for n in range(count):
        total = Decimal(str(round(rng.lognormvariate(4.8, 1.0), 2)))
        abandoned = start + timedelta(minutes=rng.randrange(60 * 24 * 60))
        phone = rng.choice(PHONES)
        contact = ContactInfo(
            email=f"shopper{n % (count // 3 + 1)}@example.com",
            phone=phone,
            email_consent=rng.random() < 0.7,
            sms_consent=rng.random() < 0.5,
            country_code="US" if phone and phone.startswith("+1") else None,
            province_code="FL" if phone == "+13055550100" else None,
        )
        items = tuple(Item(f"item {i}", rng.randint(1, 3), total / 2, cost=None) for i in range(2))
        cart = Cart(
            store=f"store{n % 20}",
            checkout=f"chk{n}",
            currency="USD",
            total=total,
            abandoned_at=abandoned,
            items=items,
            contact=contact,
        )
        sends = tuple(
            (rng.choice(["email", "sms", "ads"]), abandoned - timedelta(hours=rng.randint(1, 30)))
            for _ in range(rng.randint(0, 3))
        )
        profile = Profile(
            orders_count=rng.choice([0, 0, 0, 1, 2, 4]),
            abandonments=tuple(abandoned - timedelta(days=d) for d in range(rng.randint(0, 3))),
            sends=sends,
        )
        shopper = shopper_key(cart.store, email=contact.email) or "x"
        out.append((profile, cart, shopper))
    return out


def bench_plans(
    inputs: list[tuple[Profile, Cart, str]], policy: StorePolicy
) -> tuple[float, list[Plan]]:
    begin = time.process_time()
    plans = [plan_recovery(p, c, s, policy, c.abandoned_at) for p, c, s in inputs]
    return time.process_time() - begin, plans


def bench_decisions(
    inputs: list[tuple[Profile, Cart, str]], plans: list[Plan], policy: StorePolicy
) -> tuple[float, int, Counter[str]]:
    work = [
        (plan, touch, profile, cart, now)
        for (profile, cart, _), plan in zip(inputs, plans, strict=True)
        for touch in plan.touches
        for now in (touch.due_at, touch.due_at + timedelta(hours=9, minutes=17))
    ]
    outcomes: Counter[str] = Counter()
    begin = time.process_time()
    for plan, touch, profile, cart, now in work:
        outcomes[decide_touch(plan, touch, profile, cart, policy, now, SECRET).key] += 1
    return time.process_time() - begin, len(work), outcomes


def bench_replay(count: int, policies: PolicySet, seed: int = 7) -> tuple[float, int, Simulation]:
    """``count`` generated cart events (bench/events.py: several updates per checkout, ~15%
    abandoned, orders) replayed through the pure pipeline (recovery.simulate: stage A, stage B,
    ticks every 5 minutes of event time as ``cartbands replay`` sends them, 8 days drained)."""
    events = generate(count, seed)
    elapsed, sim = timed_replay(events, policies)
    return elapsed, len(events), sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carts", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest one counts")
    parser.add_argument("--events", type=int, default=100_000, help="cart events replayed")
    parser.add_argument("--profile", action="store_true", help="cProfile the loops")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep Python's GC thresholds instead of the worker's (cartbands.runtime)",
    )
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc()
    policies = load_policy()
    policy = policies.defaults
    inputs = make_inputs(args.carts)
    bench_plans(inputs[:2000], policy)  # warm caches (phone lookups, zones)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    plan_s, plans = bench_plans(inputs, policy)
    decide_s, decisions, outcomes = bench_decisions(inputs, plans, policy)
    replay_s, replayed, sim = bench_replay(args.events, policies)
    for _ in range(args.repeat - 1):
        plan_s = min(plan_s, bench_plans(inputs, policy)[0])
        decide_s = min(decide_s, bench_decisions(inputs, plans, policy)[0])
        replay_s = min(replay_s, bench_replay(args.events, policies)[0])
    if profiler:
        profiler.disable()
    touches = sum(len(p.touches) for p in plans)
    rows = [
        ("plans", len(plans), plan_s),
        ("due-touch decisions", decisions, decide_s),
        ("plans + decisions", len(plans) + decisions, plan_s + decide_s),
        ("replayed cart events", replayed, replay_s),
    ]
    thresholds = "Python's default" if args.default_gc else "the worker's"
    print(f"GC thresholds: {thresholds} {gc.get_threshold()}")
    print(f"recovery core: {describe_core()}")
    print(
        f"cartbands pure core: {args.carts} carts, {touches} planned touches; {replayed} cart "
        f"events replayed ({len(sim.touches)} touch commands, {len(sim.recoveries)} recoveries)"
    )
    print(f"| {'what':<22} | {'count':>9} | {'cpu s':>7} | {'per cpu s':>10} | {'us each':>7} |")
    print(f"|{'-' * 24}|{'-' * 11}|{'-' * 9}|{'-' * 12}|{'-' * 9}|")
    for name, count, seconds in rows:
        rate = count / seconds if seconds else float("inf")
        print(
            f"| {name:<22} | {count:>9} | {seconds:>7.3f} | {rate:>10,.0f} | {1e6 / rate:>7.1f} |"
        )
    events_rate = replayed / replay_s if replay_s else float("inf")
    verdict = "meets" if events_rate >= TARGET else "BELOW"
    print(f"replayed events/s {events_rate:,.0f}: target {TARGET:,} events/s {verdict}")
    bands = Counter(p.band for p in plans)
    held = sum(p.holdout for p in plans)
    print(f"bands {dict(sorted(bands.items()))}, holdout {held}")
    print(f"decisions by reason {dict(outcomes.most_common())}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
