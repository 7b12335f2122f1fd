"""At most once across rebalances: two real sender processes share a channel's partitions."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from sender_helpers import Records, answered, read_until, touch_data

from bus.kafka import ensure_topics, produce
from bus.topics import TopicNames
from cartbands.processes import spawn, stop, tail

pytestmark = pytest.mark.broker


async def wait_for_assignment(log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(r"sender email assigned \[\d", tail(log, 20000)):
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"no partitions assigned:\n{tail(log)}")


def touches(start: int, count: int) -> list[tuple[str, dict]]:
    return [
        (f"demo:s{n}", touch_data(touch_id=f"t_r{n}", shopper=f"demo:s{n}", cart=f"c{n}"))
        for n in range(start, start + count)
    ]


def answers_at_least(old: int, new: int):
    """``done``: touches t_r0..7 answered ``old`` times each and t_r8..15 ``new`` times."""

    def check(records: Records) -> bool:
        counts = {touch: len(outcomes) for touch, outcomes in answered(records).items()}
        return all(counts.get(f"t_r{n}", 0) >= (old if n < 8 else new) for n in range(16))

    return check


async def test_rebalanced_partitions_are_not_resent(broker, tmp_path):
    names = TopicNames(f"rebal-{uuid.uuid4().hex[:8]}-")
    # the results topic too: reading it before the sender has created it would make a broker
    # that auto-creates topics (Apache Kafka: one partition) give it another partition count
    await ensure_topics(broker.bootstrap, [names.touches("email"), names.touch_results], 4)
    outbox = tmp_path / "outbox"
    args = [
        "sender", "--channel", "email", "--broker", broker.url, "--topic-prefix", names.prefix,
        "--app-id", names.prefix + "app", "--partitions", "4", "--outbox-dir", str(outbox),
        "--max-lateness", "off",
    ]  # fmt: skip
    results_topic = [names.touch_results]
    first = spawn(args, tmp_path / "a.log")
    second = None
    try:
        await produce(broker.bootstrap, names.touches("email"), touches(0, 8))
        await read_until(broker.bootstrap, results_topic, answers_at_least(1, 0), 90)
        second = spawn(args, tmp_path / "b.log")
        await wait_for_assignment(tmp_path / "b.log")
        # replays of the first eight, now partly owned by the newcomer, plus eight new ones
        await produce(broker.bootstrap, names.touches("email"), touches(0, 16))
        await read_until(broker.bootstrap, results_topic, answers_at_least(2, 1), 90)
        stop(first)  # the survivor takes every partition over
        await produce(broker.bootstrap, names.touches("email"), touches(0, 16))
        results = await read_until(broker.bootstrap, results_topic, answers_at_least(3, 2), 120)
    finally:
        for process in (first, second):
            if process is not None:
                stop(process)
    logs = tail(tmp_path / "a.log") + tail(tmp_path / "b.log")
    by_touch = answered(results)
    # Each of the 40 commands was answered (waited for above); a rebalance may hand a
    # partition over before its last offset was committed, so a few are read (and answered)
    # twice: every answer after a touch's first must be a deduplicated one.
    assert sorted(by_touch) == sorted(f"t_r{n}" for n in range(16)), logs
    for touch, outcomes in by_touch.items():
        assert outcomes[0] == "delivered", (touch, outcomes, logs)
        assert set(outcomes[1:]) == {"deduplicated"}, (touch, outcomes, logs)
        assert len(outcomes) >= (3 if int(touch[3:]) < 8 else 2), (touch, outcomes, logs)
    totals = Counter(outcome for outcomes in by_touch.values() for outcome in outcomes)
    assert totals["delivered"] == 16, totals
    lines = [orjson.loads(line) for line in (outbox / "email.ndjson").read_bytes().splitlines()]
    sent = Counter(line["touch_id"] for line in lines)
    assert len(sent) == 16 and set(sent.values()) == {1}
