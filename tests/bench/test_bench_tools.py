"""The benchmark tools' pure parts: the event generator, the wire formats, the bookkeeping.

No broker and no timing here: throughput is measured by ``python -m bench``, never by a test.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.messages import records_of
from bench.compiled import copy_sources, source_files
from bench.core_ceiling import CoreRun, replay
from bench.events import Mix, generate, keyed, read_ndjson, summarize, write_ndjson
from bench.harness import (
    Loaded,
    Progress,
    RawRun,
    Sample,
    TopicMap,
    encode_batch,
    events_in,
    last_tick,
    partition_of,
    partition_records,
    table,
)
from bench.pipeline import Options, PipelineRun, Report
from bench.profile import OTHER, Stacks, categorize, package, short
from bench.timers import Rebuilds, build_states, crash_reason
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch, validate
from recovery.simulate import simulate
from schemas.records import CartCompleted, CartUpdated
from tests.pipeline.helpers import wire


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return generate(20_000, seed=11)


def test_same_seed_same_events_other_seed_other_events(events):
    assert generate(2_000, seed=11) == generate(2_000, seed=11)
    assert generate(2_000, seed=11) != generate(2_000, seed=12)
    assert len(events) == 20_000


def test_events_are_in_time_order_and_valid_canonical_records(events):
    times = [e["occurred_at"] for e in events]
    assert times == sorted(times)
    for event in events[:500]:
        validate(event)
        record = CartUpdated if event["type"] == "cart_updated" else CartCompleted
        parsed = record.from_data(event)
        assert parsed.total == Decimal(event["total"])


def test_checkouts_have_one_to_five_updates_and_most_end_in_an_order(events):
    by_checkout: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for event in events:
        by_checkout[(event["store"], event["checkout"])].append(event)
    complete = list(by_checkout.values())[:-5]  # the very last checkouts may be cut short
    updates = Counter(sum(e["type"] == "cart_updated" for e in evs) for evs in complete)
    assert set(updates) <= {1, 2, 3, 4, 5} and len(updates) == 5
    abandoned = sum(1 for evs in complete if evs[-1]["type"] != "cart_completed")
    assert 0.10 <= abandoned / len(complete) <= 0.20
    for evs in complete:
        orders = [e for e in evs if e["type"] == "cart_completed"]
        assert len(orders) <= 1
        if orders:
            assert evs[-1] is orders[0]
            assert orders[0]["total"] == evs[-2]["total"]


def test_totals_span_every_band_and_shoppers_are_reachable(events):
    summary = summarize(events)
    assert all(count > 0 for count in summary.bands.values()), summary.bands
    assert summary.with_contact > 0.8 * summary.checkouts
    assert summary.stores > 10
    emails = Counter(
        e["contact"]["email"] for e in events if e["type"] == "cart_updated" and e["contact"]
    )
    assert len({e["checkout"] for e in events}) > len(emails)  # some shoppers come back


def test_mix_options_change_the_traffic():
    quiet = summarize(generate(5_000, seed=3, mix=Mix(stores=3, abandon_rate=0.5)))
    assert quiet.stores == 3
    assert 0.4 <= quiet.abandoned / quiet.checkouts <= 0.6
    duplicated = generate(5_000, seed=3, mix=Mix(duplicate_rate=0.2))
    ids = Counter(e["event_id"] for e in duplicated)
    assert any(count > 1 for count in ids.values())


def test_ndjson_round_trip(tmp_path: Path, events):
    path = tmp_path / "carts.ndjson"
    assert write_ndjson(events[:300], path) == 300
    assert read_ndjson(path) == orjson.loads(orjson.dumps(events[:300]))


@pytest.mark.parametrize("fmt", ["array", "object"])
def test_batches_decode_with_the_pipeline_reader_and_ticks_are_not_events(fmt, events):
    chunk = [events[0], {"type": "tick", "now": 1.0}, events[1]]
    value = orjson.loads(encode_batch(chunk, fmt))
    assert records_of(value) == orjson.loads(orjson.dumps(chunk))
    assert events_in(value) == 2
    assert events_in(orjson.loads(orjson.dumps(events[0]))) == 1
    assert events_in({"type": "tick", "now": 2.0}) == 0


def test_partitions_match_the_kafka_default_and_ticks_reach_every_partition(events):
    partitioner = DefaultPartitioner()
    for key, _ in list(keyed(events))[:200]:
        assert partition_of(key, 8) == partitioner(key.encode(), list(range(8)), [])
    sample = events[:3_000]
    records = partition_records(sample, 4, tick_step=600.0)
    ticks = [[r["now"] for r in part if r.get("type") == "tick"] for part in records]
    assert ticks[0] and all(t == ticks[0] for t in ticks)
    placed = [r for part in records for r in part if r.get("type") != "tick"]
    assert sorted(e["event_id"] for e in placed) == sorted(e["event_id"] for e in sample)
    for part in records:  # each partition keeps event-time order
        times = [r["occurred_at"] for r in part if r.get("type") != "tick"]
        assert times == sorted(times)


def test_topic_map_counts_events_below_a_committed_offset():
    mapped = TopicMap(
        ends={0: 3, 1: 0}, offsets={0: [0, 1, 2], 1: []}, cumulative={0: [100, 100, 150], 1: []}
    )
    assert mapped.events == 150
    assert [mapped.events_below(0, c) for c in (None, 0, 1, 2, 3, 9)] == [0, 0, 100, 100, 150, 150]
    assert mapped.events_below(1, None) == 0


def test_profile_parsing_groups_frames_by_thread_and_package(tmp_path: Path):
    raw = tmp_path / "worker-0.txt"
    raw.write_text(
        "thread (0x1);_run_module_as_main (<frozen runpy>:198);run (faust/agents/agent.py:10);"
        "loads (schemas/codec.py:40) 7\n"
        "thread (0x1);_run_module_as_main (<frozen runpy>:198);"
        "EpollSelector.select (selectors.py:468) 3\n"
    )
    stacks = Stacks.read([raw])
    assert stacks.total == 10
    [(thread, role, samples, idle)] = stacks.threads()
    assert (role, samples, idle) == ("main (event loop)", 10, 3)
    busy = stacks.busy(thread)
    assert busy.own() == Counter({"loads (schemas/codec.py)": 7})
    assert busy.packages() == Counter({"schemas": 7})
    assert short("send (/x/site-packages/aiokafka/conn.py:12)") == "send (aiokafka/conn.py)"
    assert package("send (/x/site-packages/aiokafka/conn.py:12)") == "aiokafka"


def test_table_renders_markdown():
    text = table(("a", "bb"), [["1", "22"], ["333", "4"]])
    assert text.splitlines()[0] == "| a   | bb |"
    assert len({len(line) for line in text.splitlines()}) == 1


def _progress(points: list[tuple[float, int, float]], started: float = 0.0) -> Progress:
    progress = Progress("group", 1_000, started)
    progress.samples = [Sample(at, events, cpu, cpu / 10) for at, events, cpu in points]
    return progress


def test_rate_stops_at_the_last_commit_seen_while_events_remained():
    # Commits at 1 s (100), 2 s (300), 3 s (500); the work ends soon after, but the final
    # commit (1,000) is seen only at 9 s: the rate must not count that idle wait.
    progress = _progress(
        [(0.5, 0, 0.0), (1.0, 100, 1.0), (1.5, 100, 1.5), (2.0, 300, 2.0), (3.0, 500, 3.0),
         (9.0, 1_000, 3.6)]
    )  # fmt: skip
    assert [p.events for p in progress.points] == [100, 300, 500, 1_000]
    assert progress.window == pytest.approx(2.0)
    assert progress.rate == pytest.approx(200.0)
    assert progress.cpu_share() == pytest.approx(1.0)
    assert progress.broker_share() == pytest.approx(0.1)
    assert progress.per_cpu_second() == pytest.approx(200.0)
    assert progress.wall == pytest.approx(9.0)
    assert progress.commits == 4


def test_too_few_commits_give_no_rate_rather_than_a_wrong_one():
    progress = _progress([(1.0, 0, 0.0), (2.0, 950, 1.0), (5.0, 1_000, 1.1)])
    assert progress.commits == 2
    assert progress.rate is None and progress.cpu_share() is None and progress.window == 0.0


def test_idle_detection_reads_native_frames_below_the_python_ones(tmp_path: Path):
    raw = tmp_path / "worker-0.txt"
    loop = "thread (0x1);_run_module_as_main (<frozen runpy>:198);_run_once (asyncio/b.py:1)"
    raw.write_text(
        f"{loop};EpollSelector.select (selectors.py:468);epoll_wait (libc.so.6) 6\n"
        f"{loop};loads (schemas/codec.py:40);gc_collect_main (libpython3.11.so.1.0) 3\n"
        f"{loop};loads (schemas/codec.py:40) 1\n"
    )
    stacks = Stacks.read([raw])
    [(thread, _, samples, idle)] = stacks.threads()
    assert (samples, idle) == (10, 6)
    assert stacks.busy(thread).own() == Counter(
        {"gc_collect_main (libpython3.11.so.1.0)": 3, "loads (schemas/codec.py)": 1}
    )


def test_rebuild_lines_are_summed_and_timed_from_the_start():
    started = datetime(2026, 11, 23, 11, 0, 0).timestamp()
    log = (
        "[2026-11-23 11:00:02,500] [7] [INFO] checkout timers of partition 0 rebuilt: 10 pending\n"
        "[2026-11-23 11:00:03,000] [7] [INFO] something else\n"
        "[2026-11-23 11:00:04,250] [7] [INFO] checkout timers of partition 1 rebuilt: 5 pending\n"
        "[2026-11-23 11:00:05,000] [7] [INFO] shopper timers of partition 1 rebuilt: 7 pending\n"
    )
    rebuilds = Rebuilds.parse(log, started)
    assert rebuilds.pending == {"checkout": 15, "shopper": 7}
    assert (rebuilds.first, rebuilds.last) == (pytest.approx(2.5), pytest.approx(5.0))
    assert Rebuilds.parse("no such lines", started).first is None


def test_pending_states_hold_a_planned_shopper_for_every_abandoned_cart():
    """The restart benchmark's tables: each cart abandoned, its shopper given a plan by stage
    B from stage A's own record."""
    states = build_states(40, load_policy(DEFAULT_POLICY))
    assert len(states.carts) == len(states.abandoned) == 40
    assert len(states.shoppers) == 40
    assert all(shopper.pl is not None for shopper in states.shoppers.values())


def test_crash_reason_is_faust_s_reason_line():
    log = (
        "[x] [7] [INFO] starting\n"
        "[x] [7] [ERROR] [^---Recovery]: Crashed reason=ConsistencyError('persisted offset')\n"
        "Traceback (most recent call last):\n"
    )
    assert crash_reason(log) == "ConsistencyError('persisted offset')"
    assert crash_reason("ValueError: bad\n") == "ValueError: bad"


def test_last_tick_is_the_latest_tick_of_any_partition(events):
    placed = partition_records(events[:3_000], 4, tick_step=600.0)
    ticks = [r["now"] for part in placed for r in part if r.get("type") == "tick"]
    assert last_tick(placed) == max(ticks)
    assert last_tick(partition_records(events[:100], 4, tick_step=None)) is None


def test_profile_categories_count_each_sample_once_in_the_first_matching_one(tmp_path: Path):
    raw = tmp_path / "worker-0.txt"
    root = "thread (0x1);_run_module_as_main (<frozen runpy>:198)"
    raw.write_text(
        f"{root};on_records (agents/carts.py:9);apply_event (recovery/checkouts.py:3) 4\n"
        f"{root};on_records (agents/carts.py:9);labels (prometheus_client/metrics.py:1) 2\n"
        f"{root};Handle._run (asyncio/events.py:80) 1\n"
    )
    counts = categorize(Stacks.read([raw]))
    assert counts == Counter(
        {
            "stage A core: recovery/checkouts, valuation, money": 4,
            "metrics: prometheus_client, telemetry, agents/metering": 2,
            OTHER: 1,
        }
    )


def test_core_replay_in_a_child_process_is_the_simulation_of_the_same_input(events):
    sample = events[:3_000]
    found = replay(sample, DEFAULT_POLICY, 300.0)
    timed = [(epoch(e["occurred_at"], "t"), e) for e in sample]
    here = simulate(timed, load_policy(), lambda _: b"bench-secret", tick_step=300.0, drain=0.0)
    assert found.events == 3_000 and found.touches == len(here.touches) > 0
    assert found.cpu_seconds > 0 and found.rate == pytest.approx(3_000 / found.cpu_seconds)
    assert found.core in ("pure Python",) or found.core.startswith("compiled")


def test_core_lines_bound_the_pipeline_by_the_core_alone():
    naive = _progress([(1.0, 0, 0.0), (2.0, 1_000, 1.0), (3.0, 2_000, 2.0), (9.0, 5_000, 3.0)])
    worker = _progress([(1.0, 0, 0.0), (2.0, 4_000, 1.0), (3.0, 8_000, 2.0), (9.0, 9_000, 3.0)])
    loaded = Loaded("t", 8, 1_000, 10, 0, 1.0, 100, "object")
    run = PipelineRun(loaded, RawRun(200_000, 2_000, 1.0), worker)
    report = Report(Options(), summarize(generate(50, 3)), naive, None, [run])
    assert report.core_lines() == []
    report.core = CoreRun(events=10_000, cpu_seconds=1.0, touches=3, core="pure Python")
    lines = report.core_lines()
    assert lines[0] == "core alone: 10,000 events per CPU second (pure Python)"
    assert "core alone / naive Faust: 10.00x" in lines[1]
    assert "the core is 40% of the worker's CPU time; core alone / raw: 5.0%" in lines[2]


def test_compiled_lines_compare_the_compiled_worker_and_core_in_the_same_run():
    naive = _progress([(1.0, 0, 0.0), (2.0, 1_000, 1.0), (3.0, 2_000, 2.0), (9.0, 5_000, 3.0)])
    worker = _progress([(1.0, 0, 0.0), (2.0, 4_000, 1.0), (3.0, 8_000, 2.0), (9.0, 9_000, 3.0)])
    faster = _progress([(1.0, 0, 0.0), (2.0, 5_000, 1.0), (3.0, 10_000, 2.0), (9.0, 11_000, 3.0)])
    loaded = Loaded("t", 8, 1_000, 10, 0, 1.0, 100, "object")
    run = PipelineRun(loaded, RawRun(200_000, 2_000, 1.0), worker, compiled=faster)
    report = Report(Options(), summarize(generate(50, 3)), naive, None, [run])
    report.core = CoreRun(events=10_000, cpu_seconds=1.0, touches=3, core="pure Python")
    report.compiled_core = CoreRun(12_500, 1.0, 3, "compiled with mypyc (41 of 51 modules)")
    report.compiled_note = "compiled core: built with mypyc in 61 s (not timed)"
    lines = report.compiled_lines()
    assert lines[0] == report.compiled_note
    wire = "100 records/message (object)"
    assert lines[1].startswith(f"worker, compiled core, {wire}: / naive Faust 5.00x;")
    assert "/ pure-Python worker 1.25x;" in lines[1]
    assert lines[2] == "core alone, compiled / pure: 1.25x"
    rendered = report.render()
    row = next(line for line in rendered.splitlines() if "worker, compiled core" in line)
    assert [cell.strip() for cell in row.split("|")[1:3]] == [
        f"cartbands worker, compiled core, {wire}",
        "5,000",
    ]
    assert "core alone, same input and ticks (compiled with mypyc (41 of 51 modules))" in rendered


def test_compiled_build_copies_what_a_build_of_the_checkout_sees(tmp_path: Path):
    import subprocess

    checkout = tmp_path / "checkout"
    (checkout / "recovery").mkdir(parents=True)
    (checkout / "recovery" / "core.py").write_text("x = 1\n")
    (checkout / ".gitignore").write_text("var/\n")
    (checkout / "var").mkdir()
    (checkout / "var" / "state.db").write_text("local state")
    assert source_files(checkout) is None  # not a work tree: an export, copied whole
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    assert sorted(source_files(checkout) or []) == [".gitignore", "recovery/core.py"]
    copied = tmp_path / "copied"
    copy_sources(checkout, copied)
    assert (copied / "recovery" / "core.py").read_text() == "x = 1\n"
    assert not (copied / "var").exists()


def test_quix_peer_fold_matches_the_core() -> None:
    """bench/quix_peer.py's fold (run by quixstreams, imported here without it) keeps the
    states and records the core's apply_event gives, ticks passed through."""
    from bench import quix_peer
    from recovery import checkouts as stage_a
    from recovery.clock import tick
    from recovery.ids import checkout_key

    policies = load_policy(DEFAULT_POLICY)
    events = generate(400, 3, Mix())
    store: dict[bytes, bytes] = {}
    records = [*events, tick(1.0)]
    batch = orjson.loads(quix_peer.dumps({"batch": records}))
    out = quix_peer.fold_stage_a(
        quix_peer.records_of(batch), 0, policies, store.get, store.__setitem__
    )
    states: dict[str, object] = {}
    expected = []
    for event in events:
        checked = validate(event)
        key = checkout_key(checked[1], checked[2])
        policy = policies.for_store(checked[1])
        new, effects = stage_a.apply_event(states.get(key), event, 0, policy, checked)  # type: ignore[arg-type]
        states[key] = new
        expected += [{**wire(e.record), "shopper": e.key} for e in effects if e.record and e.key]
    assert {k.decode(): orjson.loads(v) for k, v in store.items()} == orjson.loads(
        quix_peer.dumps(states)
    )
    assert out[-1] == tick(1.0)
    assert orjson.loads(quix_peer.dumps(out[:-1])) == orjson.loads(quix_peer.dumps(expected))
    # sent a record a message, each is keyed by its shopper
    assert [quix_peer.shopper_of(r) for r in out] == [*(e["shopper"] for e in expected), None]
    minimal: dict[bytes, bytes] = {}
    quix_peer.fold_minimal(records, minimal.__setitem__)
    assert len(minimal) == len(store)


def test_quix_lines_set_the_worker_s_stage_a_alone_beside_quixstreams():
    naive = _progress([(1.0, 0, 0.0), (2.0, 1_000, 1.0), (3.0, 2_000, 2.0), (9.0, 5_000, 3.0)])
    worker = _progress([(1.0, 0, 0.0), (2.0, 4_000, 1.0), (3.0, 8_000, 2.0), (9.0, 9_000, 3.0)])
    alone = _progress([(1.0, 0, 0.0), (2.0, 6_000, 1.0), (3.0, 12_000, 2.0), (9.0, 13_000, 3.0)])
    quix = _progress([(1.0, 0, 0.0), (2.0, 5_000, 1.0), (3.0, 10_000, 2.0), (9.0, 11_000, 3.0)])
    loaded = Loaded("t", 8, 1_000, 10, 0, 1.0, 100, "object")
    run = PipelineRun(loaded, RawRun(200_000, 2_000, 1.0), worker, stage_a=alone)
    run.quix["stage-a"] = quix
    report = Report(Options(), summarize(generate(50, 3)), naive, None, [run])
    (line,) = report.quix_lines()
    assert "worker / it 0.80x;" in line and "worker's stage A alone / it 1.20x;" in line
    wire = "100 records/message (object)"
    row = next(r for r in report.render().splitlines() if "stage A alone" in r)
    assert [cell.strip() for cell in row.split("|")[1:3]] == [
        f"cartbands worker, stage A alone, {wire}",
        "6,000",
    ]
    failed = PipelineRun(loaded, RawRun(200_000, 2_000, 1.0), worker, stage_a_failure="gone")
    report = Report(Options(), summarize(generate(50, 3)), naive, None, [failed])
    assert report.quix_lines() == [f"cartbands stage A alone ({wire}) NOT MEASURED: gone"]
