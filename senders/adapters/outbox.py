"""The outbox: append each delivered message, fully rendered, to ``<dir>/<channel>.ndjson``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from schemas.codec import dumps
from schemas.records import TouchCommand
from senders.adapters.base import utcnow
from senders.messages import Message, describe


class OutboxAdapter:
    provider = "outbox"

    def __init__(
        self, directory: Path, channel: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.path = directory / f"{channel}.ndjson"
        self.channel = channel
        self.clock = clock

    def line(self, message: Message, touch: TouchCommand) -> bytes:
        record = {
            "touch_id": touch.touch_id,
            "store": touch.store,
            "shopper": touch.shopper,
            "cart": touch.cart,
            "channel": self.channel,
            "step": touch.step,
            "band": touch.band,
            "segment": touch.segment,
            "template": touch.template,
            "due_at": touch.due_at,
            "sent_at": self.clock(),
            "message": describe(message),
        }
        return dumps(record) + b"\n"

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() of one line in append mode: lines from concurrent senders never interleave.
        with self.path.open("ab") as handle:
            handle.write(data)

    async def deliver(self, message: Message, touch: TouchCommand) -> str | None:
        await asyncio.to_thread(self._append, self.line(message, touch))
        return f"outbox:{self.path.name}"

    async def close(self) -> None:
        return None
