"""The benchmark tools' pure parts: the event generator, the wire formats, the bookkeeping.

No broker and no timing here: throughput is measured by ``python -m bench``, never by a test.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from agents.wire import records_of
from bench.events import Mix, generate, keyed, read_ndjson, summarize, write_ndjson
from bench.harness import (
    TopicMap,
    encode_batch,
    events_in,
    partition_of,
    partition_records,
    table,
)
from bench.profile import Stacks, package, short
from recovery.checkouts import validate
from schemas.records import CartCompleted, CartUpdated


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
