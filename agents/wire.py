"""What a message on a pipeline topic may hold: one record, or a batch of records.

Producers we control (replay, benchmarks, a batching gateway) put many events of one partition
into one message, ``{"batch": [...]}`` or a JSON array, to amortize Faust's per-message cost;
single-event producers keep working unchanged.
"""

from __future__ import annotations

from typing import Any


def records_of(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and isinstance(value.get("batch"), list) and len(value) == 1:
        return list(value["batch"])
    return [value]


def tick(now: float, source: int | None = None, of: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "tick", "now": now}
    if source is not None:
        record["src"] = source
        record["of"] = of
    return record
