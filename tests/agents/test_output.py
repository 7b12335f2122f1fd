"""The agents' direct producer path writes the very bytes Faust's own send path would."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

import agents.output as output_module
from agents.output import Output
from cartbands.policyfile import load_policy
from schemas.codec import dumps
from streams.app import create_app

STATE: dict[str, Any] = {
    "pt": 3,
    "seq": 2,
    "c": {"total": "61.22", "contact": {"email": "a@example.com"}, "line_items": [{"q": 1}]},
    "pl": {"done": {"1": "sent"}, "cc": {"CODE": Decimal("4.10")}},
}


@pytest.fixture(scope="module")
def pipeline():  # type: ignore[no-untyped-def]
    # Building the app connects to nothing: the broker address is only read at start.
    return create_app(broker="kafka://127.0.0.1:9", policies=load_policy(), app_id="bytes-test")


@pytest.mark.parametrize("name", ["checkouts", "shoppers"])
def test_table_changelog_bytes_match_faust(pipeline, name: str) -> None:  # type: ignore[no-untyped-def]
    table = pipeline.app.tables[name]
    topic = table.changelog_topic
    key, _ = topic.prepare_key("store-1:abc", table.key_serializer)
    value, _ = topic.prepare_value(STATE, table.value_serializer)
    assert key == dumps("store-1:abc")  # JSON: the table restores str keys
    assert value == dumps(STATE)


def test_topic_record_bytes_match_faust(pipeline) -> None:  # type: ignore[no-untyped-def]
    for topic in (pipeline.recoveries, *pipeline.touch_topics.values()):
        key, _ = topic.prepare_key(b"store-1:abc", None)
        value, _ = topic.prepare_value({"batch": [STATE]}, None)
        assert key == b"store-1:abc"
        assert value == dumps({"batch": [STATE]})


def test_changelog_offsets_are_recorded_in_the_store_at_most_once_a_second(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The newest acknowledged changelog offset reaches a RocksDB store (a restore resumes
    after it), without a database write per acknowledgement."""
    app = create_app(
        broker="kafka://127.0.0.1:9",
        policies=load_policy(),
        app_id="offsets-test",
        store="rocksdb://",
        state_dir=tmp_path,
    ).app
    table = app.tables["checkouts"]
    topic = table.changelog_topic.get_topic_name()
    tp = TopicPartition(topic, 2)
    output = Output(app)
    loop = asyncio.new_event_loop()

    def acked(offset: int, records: int = 1) -> None:
        """A batch of ``records`` changelog records acknowledged at base ``offset``."""
        future = loop.create_future()
        future.set_result(SimpleNamespace(offset=offset))
        output._on_changelog(topic, 2, records)(future)

    for offset in (5, 9, 7):  # acknowledgements may come out of order
        acked(offset)
    output._persist_offsets(table, topic)
    assert table.data.persisted_offset(tp) == 9
    acked(12)
    output._persist_offsets(table, topic)  # within the second: not written yet
    assert table.data.persisted_offset(tp) == 9
    monkeypatch.setattr(output_module, "PERSIST_EVERY", 0.0)
    output._persist_offsets(table, topic)
    assert table.data.persisted_offset(tp) == 12
    acked(13, records=4)  # a batch's last record is at its base offset + 3
    output._persist_offsets(table, topic)
    assert table.data.persisted_offset(tp) == 16
    loop.close()
