"""``cartbands report --broker``: the two topics read from their start to their end."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from click.testing import CliRunner

from bus.kafka import ensure_topics, produce, producer
from bus.topics import TopicNames
from cartbands.cli import cli
from cartbands.report_cmd import InputError, read_topics


def test_every_record_of_both_topics_is_read(broker):
    names = TopicNames(f"rep-{uuid.uuid4().hex[:8]}.")
    recoveries = [(f"c{i}", {"type": "plan", "checkout": f"c{i}", "n": i}) for i in range(7)]
    results = [(f"t{i}", {"type": "touch_result", "touch_id": f"t{i}"}) for i in range(3)]

    async def scenario() -> list[dict]:
        await ensure_topics(broker.bootstrap, [names.recoveries, names.touch_results], 2)
        await produce(broker.bootstrap, names.recoveries, recoveries)
        await produce(broker.bootstrap, names.touch_results, results)
        async with producer(broker.bootstrap) as out:
            await out.send_and_wait(names.touch_results, key=b"bad", value=b"{not json")
        topics = [names.recoveries, names.touch_results]
        with pytest.raises(InputError, match=r"\[\d\]@\d+: not JSON"):
            await read_topics(broker.bootstrap, topics, timeout=20, skip_malformed=False)
        return await read_topics(broker.bootstrap, topics, timeout=20, skip_malformed=True)

    records = asyncio.run(scenario())
    # The records as the stream wrote them: what recovery.ledger.outcomes folds.
    assert sorted(records, key=repr) == sorted(
        [value for _, value in recoveries + results], key=repr
    )


def test_missing_topics_are_named(broker):
    prefix = f"none-{uuid.uuid4().hex[:8]}."
    result = CliRunner().invoke(
        cli, ["report", "--broker", broker.url, "--topic-prefix", prefix, "--timeout", "10"]
    )
    assert result.exit_code == 1, result.output
    assert f"topics missing at {broker.bootstrap}: {prefix}" in result.output
    assert "--topic-prefix" in result.output


def test_empty_topics_are_read_to_their_end_at_once(broker):
    names = TopicNames(f"empty-{uuid.uuid4().hex[:8]}.")
    topics = [names.recoveries, names.touch_results]

    async def scenario() -> list[dict]:
        await ensure_topics(broker.bootstrap, topics, 2)
        return await read_topics(broker.bootstrap, topics, timeout=5, skip_malformed=False)

    assert asyncio.run(scenario()) == []
