"""Many records in one message: ``{"batch": [...]}``, the wire form stage A and stage B read.

Producers we control (the gateway, stage A, replay) put many records of one partition into one
message so the consumer pays its per-message cost once per message, not once per record. A
message stays under ``BATCH_MAX_BYTES``, far below the broker's and the producer's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

BATCH_MAX_BYTES = 64 * 1024

T = TypeVar("T")


def batch_message(values: Sequence[bytes]) -> bytes:
    """One message holding the encoded records ``values``, in order."""
    return b'{"batch":[' + b",".join(values) + b"]}"


def runs(
    items: Sequence[T], size: Callable[[T], int], limit: int = BATCH_MAX_BYTES
) -> list[list[T]]:
    """``items`` cut, in order, into runs whose sizes (one separator byte each) stay within
    ``limit``; an item larger than ``limit`` is a run of its own."""
    out: list[list[T]] = []
    run: list[T] = []
    total = 0
    for item in items:
        length = size(item) + 1
        if run and total + length > limit:
            out.append(run)
            run = []
            total = 0
        run.append(item)
        total += length
    if run:
        out.append(run)
    return out


def packed(
    items: Sequence[T], payload: Callable[[T], bytes], limit: int = BATCH_MAX_BYTES
) -> list[tuple[list[T], bytes | None]]:
    """``items`` (encoded records of one partition, in order) as messages: each run of
    :func:`runs` with its ``{"batch": [...]}`` message, or None for a lone record, which keeps
    its own message (and key)."""
    out: list[tuple[list[T], bytes | None]] = []
    for run in runs(items, lambda item: len(payload(item)), limit):
        out.append((run, None if len(run) == 1 else batch_message([payload(i) for i in run])))
    return out


def records_of(value: Any) -> list[Any]:
    """The records a decoded message holds: those of a ``{"batch": [...]}`` message or of a
    JSON array, in order; any other value is one record."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and isinstance(value.get("batch"), list) and len(value) == 1:
        return list(value["batch"])
    return [value]
