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
