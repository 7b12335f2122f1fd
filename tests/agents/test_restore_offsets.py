"""A restore records no changelog offset past the highwater Faust's recovery read.

tansu answers a partition's end offset with its last batch's base offset + 1 (quirk 4 of
../shared/BROKER.md), while a restore fetches and applies that whole batch; Faust's recovery
then refuses to restart the worker on its kept RocksDB state if the store recorded the batch's
last offset (``ConsistencyError``: the persisted offset is higher than the highwater).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition

from schemas.codec import dumps
from tests.agents.apps import offline_pipeline


def restored(tmp_path: Path, highwater: int | None) -> tuple[Any, TopicPartition]:
    """A RocksDB-backed table after the restore of a batch of 4 records (offsets 13 to 16) of
    its changelog partition 2, the recovery having read ``highwater`` for it."""
    app = offline_pipeline("restore-test", tmp_path).app
    table = app.tables["shoppers"]
    tp = TopicPartition(table.changelog_topic.get_topic_name(), 2)
    if highwater is not None:
        app.tables.recovery.active_highwaters[tp] = highwater
    events = [
        SimpleNamespace(
            message=SimpleNamespace(
                tp=tp, partition=2, offset=offset, key=dumps(f"k{offset}"), value=dumps({})
            )
        )
        for offset in range(13, 17)
    ]
    table.apply_changelog_batch(events)
    return table, tp


def test_restore_records_at_most_the_highwater_read(tmp_path: Path) -> None:
    table, tp = restored(tmp_path, highwater=13)  # tansu: the last batch's base offset
    assert table.data.persisted_offset(tp) == 13
    assert table.data.get("k16") == {}  # the records themselves are all applied


def test_restore_records_its_newest_offset_when_under_the_highwater(tmp_path: Path) -> None:
    table, tp = restored(tmp_path, highwater=16)  # Apache Kafka: the last record's offset
    assert table.data.persisted_offset(tp) == 16


def test_records_the_store_holds_are_not_applied_again(tmp_path: Path) -> None:
    """A record at or below the offset the store records is older than what the store holds:
    applied again it would put an older value back (a converted checkout open again)."""
    table, tp = restored(tmp_path, highwater=18)

    def records(*pairs: tuple[int, str, Any]) -> list[Any]:
        return [
            SimpleNamespace(
                message=SimpleNamespace(
                    tp=tp, partition=2, offset=offset, key=dumps(key), value=dumps(value)
                )
            )
            for offset, key, value in pairs
        ]

    table.apply_changelog_batch(records((17, "k15", {"newer": True})))
    table.data.set_persisted_offset(tp, 18)  # as the agents record their own writes
    table.apply_changelog_batch(records((15, "k15", {}), (18, "k18", {}), (19, "k19", {})))
    assert table.data.get("k15") == {"newer": True}
    assert table.data.get("k19") == {}
    assert table.data.persisted_offset(tp) == 18  # 19 is past the highwater read
