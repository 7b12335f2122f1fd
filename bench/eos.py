"""Faust's exactly-once mode with cartbands' agents, on Apache Kafka: does it hold after kill -9?

The product runs Faust at least once (streams/app.py) and offers no other mode; this bench
starts ``cartbands worker`` with Faust's ``processing_guarantee`` set to each of
``at_least_once`` and ``exactly_once`` (the latter needs a broker with transactions: Apache
Kafka, ``cartbands.kafka_broker``), feeds the same generated carts and event-time ticks, kills
the worker with SIGKILL ``--kills`` times mid-stream (each time once a further share of the
expected touches is on the touch topics) and starts it again, waits until its group has
committed every input partition to its end, and reads the touch topics as a
``read_committed`` consumer. It counts the touch records, the distinct touch ids, those the
pure core (``recovery.simulate``) has that the stream lacks, and repeats.

    python -m bench.eos [--carts 2000] [--kills 2] [--modes at_least_once exactly_once]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.kafka import ensure_topics
from bus.topics import TopicNames
from cartbands.broker import _die_with_parent
from cartbands.kafka_broker import KafkaBroker
from cartbands.replay import replay
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.simulate import simulate
from schemas.codec import loads
from streams.app import code_secret

MODES = ("at_least_once", "exactly_once")
T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC).timestamp()
TOTALS = ("30", "75", "120", "250", "480", "700", "1200", "90")


def run_worker(mode: str, args: list[str]) -> None:
    """``cartbands worker ARGS`` with Faust's processing guarantee set to ``mode``."""
    import faust

    from cartbands.cli import cli

    original = faust.App.__init__

    def with_guarantee(self: Any, *positional: Any, **options: Any) -> None:
        options["processing_guarantee"] = mode
        original(self, *positional, **options)

    faust.App.__init__ = with_guarantee  # type: ignore[method-assign]
    cli(["worker", *args])


def carts(count: int) -> list[tuple[float, dict[str, Any]]]:
    events = []
    for number in range(count):
        at = T0 + 20 * number
        who = f"eos-{number}"
        total = TOTALS[number % len(TOTALS)]
        events.append(
            (
                at,
                {
                    "type": "cart_updated",
                    "event_id": f"evt-{number}",
                    "store": "eos",
                    "checkout": f"c{number}",
                    "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
                    "currency": "USD",
                    "total": total,
                    "line_items": [{"title": "thing", "quantity": 1, "price": total}],
                    "contact": {
                        "email": f"{who}@example.com",
                        "phone": "+12125550100",
                        "sms_phone": "+12125550100",
                        "email_consent": True,
                        "sms_consent": True,
                        "customer_id": who,
                    },
                    "shipping_address": {"country_code": "US", "province_code": "NY"},
                    "recovery_url": f"https://shop.example.com/c{number}/recover",
                },
            )
        )
    return events


async def records_on(bootstrap: str, topics: list[str], parts: int) -> int:
    """Records on ``topics`` (sum of end offsets; nothing here is ever deleted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in topics for p in range(parts)]
        return int(sum((await consumer.end_offsets(tps)).values()))
    finally:
        await consumer.stop()


async def behind(bootstrap: str, group: str, topics: list[str], parts: int) -> list[str]:
    """The input partitions ``group`` has not committed to their end: "topic[p] c/end"."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        out = []
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in range(parts)]
            end = await consumer.end_offsets(tps)
            for tp in tps:
                done = await consumer.committed(tp) or 0
                if done < end[tp]:
                    out.append(f"{topic}[{tp.partition}] {done}/{end[tp]}")
        return out
    finally:
        await consumer.stop()


async def read_committed(bootstrap: str, topics: list[str], parts: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in topics for p in range(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # read_committed stops at the last stable offset: open transactions hold it back
        last_stable = await consumer.end_offsets(tps)
        values: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(at >= last_stable[tp] for at, tp in zip(positions, tps, strict=True)):
                break
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(loads(record.value) for record in records if record.value)
        return values
    finally:
        await consumer.stop()


@dataclass
class Outcome:
    mode: str
    kills: int
    wall: float
    records: int
    distinct: int
    expected: int
    missing: int
    extra: int
    errors: list[str]

    @property
    def repeats(self) -> int:
        return self.records - self.distinct


def one_mode(
    broker: KafkaBroker, mode: str, count: int, kills: int, work: Path, timeout: float
) -> Outcome:
    names = TopicNames(f"eos-{mode}-{os.getpid()}-")
    app_id = f"{names.prefix}app"
    parts = 4
    asyncio.run(ensure_topics(broker.bootstrap, names.pipeline_topics, parts))
    events = carts(count)
    asyncio.run(replay(broker.bootstrap, names.cart_events, events, tick_step=timedelta(hours=1)))
    expected = {t["touch_id"] for t in simulate(events, load_policy(), code_secret).touches}
    log = work / f"{mode}.log"
    args = [
        "--broker", broker.url, "--policy", str(DEFAULT_POLICY), "--app-id", app_id,
        "--topic-prefix", names.prefix, "--partitions", str(parts),
        "--state-dir", str(work / f"{mode}-state"), "--clock", "event",
    ]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as handle:
            return subprocess.Popen(
                [sys.executable, "-m", "bench.eos", "--run-worker", mode, *args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    started = time.monotonic()
    worker = start()
    touch_topics = list(names.touch_topics)
    for kill in range(1, kills + 1):
        goal = len(expected) * kill / (kills + 1)
        while asyncio.run(records_on(broker.bootstrap, touch_topics, parts)) < goal:
            if worker.poll() is not None:
                break
            time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        on_topics = asyncio.run(records_on(broker.bootstrap, touch_topics, parts))
        print(f"{mode}: kill -9 at {time.monotonic() - started:.1f}s, {on_topics} touch records")
        worker = start()
    inputs = [names.cart_events, names.shopper_events]
    deadline = time.monotonic() + timeout
    lagging = ["(not checked)"]
    while time.monotonic() < deadline and worker.poll() is None:
        lagging = asyncio.run(behind(broker.bootstrap, app_id, inputs, parts))
        if not lagging:
            break
        time.sleep(1.0)
    wall = time.monotonic() - started
    if lagging:
        print(f"{mode}: not committed to the end after {wall:.0f}s: {', '.join(lagging)}")
    time.sleep(3.0)  # a last commit interval for what the final round produced
    worker.terminate()
    worker.wait(30)
    found = asyncio.run(read_committed(broker.bootstrap, touch_topics, parts))
    ids = Counter(t["touch_id"] for t in found)
    text = log.read_text(errors="replace")
    errors = [line for line in text.splitlines() if "[ERROR]" in line or "Crashed" in line]
    return Outcome(
        mode=mode,
        kills=kills,
        wall=wall,
        records=len(found),
        distinct=len(ids),
        expected=len(expected),
        missing=len(expected - set(ids)),
        extra=len(set(ids) - expected),
        errors=errors,
    )


def render(outcomes: list[Outcome]) -> str:
    columns = [
        "mode",
        "kill -9",
        "wall s",
        "touch records",
        "distinct",
        "core",
        "missing",
        "extra",
        "repeats",
    ]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for o in outcomes:
        rows.append(
            f"| {o.mode} | {o.kills} | {o.wall:.1f} | {o.records:,} | {o.distinct:,} | "
            f"{o.expected:,} | {o.missing} | {o.extra} | {o.repeats} |"
        )
    for o in outcomes:
        if o.errors:
            rows.append(f"\n{o.mode}, {o.kills} kills: {len(o.errors)} error lines, first:")
            rows.extend(f"    {line[:200]}" for line in o.errors[:3])
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-worker"]:
        run_worker(argv[1], argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.eos", description=__doc__)
    parser.add_argument("--carts", type=int, default=2_000)
    parser.add_argument("--kills", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    parser.add_argument("--logs", type=Path, default=None, help="keep the worker logs here")
    args = parser.parse_args(argv)
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker() as broker:
        for kills in args.kills:
            for mode in args.modes:
                work = (args.logs or Path(tmp)) / f"{mode}-{kills}"
                work.mkdir(parents=True)
                outcomes.append(one_mode(broker, mode, args.carts, kills, work, args.timeout))
                print(render(outcomes[-1:]), flush=True)
    print()
    print(render(outcomes))


if __name__ == "__main__":
    main()
