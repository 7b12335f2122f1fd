"""What a message on a pipeline topic may hold: one record, or a batch of records.

Producers we control (replay, benchmarks, a batching gateway) put many events of one partition
into one message, ``{"batch": [...]}`` or a JSON array, to amortize Faust's per-message cost;
single-event producers keep working unchanged.

The agents' source topics hand them each message's bytes, and :func:`records_in` decodes them
in the agent: a message is decoded just before its records are folded, so what it decodes to
is freed as soon as they are, instead of waiting, decoded, in Faust's buffers, where with
batched messages the cyclic GC would scan hundreds of thousands of objects over and over. An
undecodable message is the agent's to reject with a reason, not a log line.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.batches import records_of


class Undecodable(ValueError):
    """A message that is not JSON; the text says so, after ``json:``."""


class BadTick(ValueError):
    """A tick record whose fields cannot be a clock; the text names the field."""


# the times a tick may carry: what a datetime can hold (recovery.checkouts.epoch's range)
TICK_MIN = 0.0
TICK_MAX = 253402300799.0


def records_in(payload: Any) -> list[Any]:
    """The records of a message read from a source topic: its bytes, decoded here."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise Undecodable(f"json: not a JSON message ({exc})") from exc
    return records_of(payload)


def text_of(payload: Any) -> Any:
    """An undecodable message as text, to keep it in a dead-letter record."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload).decode("utf-8", "replace")
    return payload


def tick(now: float, source: int | None = None, of: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "tick", "now": now}
    if source is not None:
        record["src"] = source
        record["of"] = of
    return record


def tick_time(record: dict[str, Any]) -> float:
    """The time of a tick record, its fields checked: ``now`` epoch seconds, and ``src`` /
    ``of`` (which stage-A partition forwarded it, of how many) whole numbers if present."""
    now = record.get("now")
    if isinstance(now, bool) or not isinstance(now, int | float) or not TICK_MIN <= now <= TICK_MAX:
        raise BadTick("now: expected epoch seconds")
    for name in ("src", "of"):
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadTick(f"{name}: expected a partition number")
    return float(now)
