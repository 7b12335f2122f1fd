"""What a normalizer asks the shell to produce: a canonical record, its stream and key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Stream = Literal["cart_events", "shopper_events", "ingest_dlq"]


@dataclass(frozen=True)
class Emit:
    """One record for ``stream`` (a :class:`bus.topics.TopicNames` attribute).

    ``broadcast``: one copy to every partition (store-wide records such as a shop redaction),
    since a single key would reach one partition's owner only.
    """

    stream: Stream
    key: str
    value: dict[str, Any]
    broadcast: bool = False

    @property
    def kind(self) -> str:
        return str(self.value.get("type", "unknown"))
