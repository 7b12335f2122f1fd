"""At most once across rebalances: two real sender processes share a channel's partitions."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from sender_helpers import touch_data

from cartbands.kafka import drain, ensure_topics, produce
from cartbands.processes import spawn, stop, tail
from streams.topics import TopicNames

pytestmark = pytest.mark.broker


async def wait_for_assignment(log: Path, timeout: float = 60) -> None:
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


async def test_rebalanced_partitions_are_not_resent(broker, tmp_path):
    names = TopicNames("rebal-")
    await ensure_topics(broker.bootstrap, [names.touches("email")], 4)
    outbox = tmp_path / "outbox"
    args = [
        "sender", "--channel", "email", "--broker", broker.url, "--topic-prefix", names.prefix,
        "--app-id", "rebal", "--partitions", "4", "--outbox-dir", str(outbox),
        "--max-lateness", "off",
    ]  # fmt: skip
    first = spawn(args, tmp_path / "a.log")
    second = None
    try:
        await produce(broker.bootstrap, names.touches("email"), touches(0, 8))
        await drain(broker.bootstrap, [names.touch_results], until=8, timeout=60)
        second = spawn(args, tmp_path / "b.log")
        await wait_for_assignment(tmp_path / "b.log")
        # replays of the first eight, now partly owned by the newcomer, plus eight new ones
        await produce(broker.bootstrap, names.touches("email"), touches(0, 16))
        await drain(broker.bootstrap, [names.touch_results], until=24, timeout=60)
        stop(first)  # the survivor takes every partition over
        await produce(broker.bootstrap, names.touches("email"), touches(0, 16))
        await drain(broker.bootstrap, [names.touch_results], until=40, timeout=90)
        results = await drain(broker.bootstrap, [names.touch_results], idle=3, timeout=30)
    finally:
        for process in (first, second):
            if process is not None:
                stop(process)
    outcomes = Counter(value["outcome"] for _, _, value in results)
    # Each of the 40 commands was answered; a rebalance may hand a partition over before its
    # last offsets were committed, so a few are read twice: those too must be deduplicated.
    assert set(outcomes) == {"delivered", "deduplicated"}, outcomes
    assert outcomes["delivered"] == 16 and outcomes["deduplicated"] >= 24, outcomes
    lines = [orjson.loads(line) for line in (outbox / "email.ndjson").read_bytes().splitlines()]
    sent = Counter(line["touch_id"] for line in lines)
    assert len(sent) == 16 and set(sent.values()) == {1}
