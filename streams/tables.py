"""The app's tables: a restore never records a changelog offset past the broker's end offset.

Faust's recovery refuses to start a worker whose store records a changelog offset above the
highwater it read (the partition's end offset - 1), and tansu answers that end offset with the
last batch's base offset + 1 (quirk 4 of ../shared/BROKER.md). A restore applies every record
it fetched, the rest of that last batch included, and a RocksDB store records the newest one:
a worker killed after a restore, before it wrote that partition again, could not restart on
its kept state. The offset recorded is kept at the highwater the recovery read; the records
after it are applied again by the next restore, in order, to the values the store holds. A
standby goes on reading past the highwater read at the last rebalance: promoted, it re-reads
the records since then (on Apache Kafka too, where the highwater is the true end).

A changelog record at or below the offset the store records is not applied again: the store
holds that record's value or a newer one (the agents record an offset only once the writes up
to it are stored, agents/output.py), and a standby reading a partition again, or a restore
that stops at tansu's short end, would put older values back over newer ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import faust


class KeptTable(faust.Table):
    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        """Apply the records newer than what the store records holding; record the newest
        applied, at most the highwater read, never below what the store recorded before."""
        held: dict[Any, int | None] = {}
        newest: dict[Any, int] = {}
        fresh = []
        for event in batch:
            tp, offset = event.message.tp, event.message.offset
            if tp not in held:
                held[tp] = self.data.persisted_offset(tp)
            holds = held[tp]
            if holds is None or offset > holds:
                fresh.append(event)
                newest[tp] = max(offset, newest.get(tp, offset))
        super().apply_changelog_batch(fresh)
        recovery = cast(Any, self.app.tables).recovery
        for tp, offset in newest.items():
            end = highwater(recovery, tp)
            if end is not None and offset > end:
                holds = held[tp]
                self.data.set_persisted_offset(tp, end if holds is None else max(end, holds))


def highwater(recovery: Any, tp: Any) -> int | None:
    """The highwater the recovery read for ``tp`` (active or standby), if it read one."""
    for highwaters in (recovery.active_highwaters, recovery.standby_highwaters):
        if tp in highwaters:  # a Counter: a missing key would read as 0
            return int(highwaters[tp])
    return None
