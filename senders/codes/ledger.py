"""The codes this sender created in stores, kept on the de-dup log (``sender-dedup``).

Each created code is a record keyed ``code:<CODE>`` (never a touch id, which starts with
``t_``) in state ``code_issued`` with what removal needs: store, shopper key (a hash, no
contact), cart, platform, the platform's id and the touch's due time and expiry; a removed
code is written again in state ``code_removed``. Compaction keeps the last record per code, and
the log is read whole at start (:class:`~senders.dedup.DedupLog`), so the ledger is rebuilt
after a restart. In memory only codes that have not expired are indexed: an expired code needs
nothing from us (the platform's end date ends it), so memory is bounded by the codes issued
within one validity period.

Writing ``code_issued`` after the platform said yes and before the touch is delivered means a
crash in between leaves a code that the next attempt finds in the store (creation is
idempotent by code) and records then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from senders.dedup import DedupLog

PREFIX = "code:"
ISSUED = "code_issued"
REMOVED = "code_removed"
PRUNE_EVERY = 60.0  # seconds between sweeps of expired codes as new ones are issued


@dataclass(frozen=True)
class Issued:
    code: str
    store: str
    shopper: str
    cart: str
    platform: str
    ref: str
    touch_id: str
    due_at: float
    expires_at: float


def _issued(data: dict[str, Any]) -> Issued | None:
    try:
        return Issued(
            code=str(data["code"]),
            store=str(data["store"]),
            shopper=str(data["shopper"]),
            cart=str(data["cart"]),
            platform=str(data["platform"]),
            ref=str(data["ref"]),
            touch_id=str(data["touch_id"]),
            due_at=float(data["due_at"]),
            expires_at=float(data["expires_at"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


class CodeLedger:
    def __init__(self, dedup: DedupLog) -> None:
        self.dedup = dedup
        self.live: dict[str, Issued] = {}
        self._pruned = 0.0

    def load(self, now: datetime) -> int:
        """(Re)build the index from what the de-dup log has read; returns the live codes."""
        for key, entry in list(self.dedup.entries.items()):
            if not key.startswith(PREFIX):
                continue
            code = key[len(PREFIX) :]
            if entry.state == REMOVED:
                self.live.pop(code, None)
            elif entry.state == ISSUED and entry.result is not None:
                issued = _issued(entry.result)
                if issued is not None:
                    self.live[code] = issued
        self.prune(now)
        return len(self.live)

    def prune(self, now: datetime) -> None:
        """Forget codes past their expiry: the platform ended them."""
        stamp = now.timestamp()
        self._pruned = stamp
        for code in [c for c, i in self.live.items() if i.expires_at <= stamp]:
            del self.live[code]

    def known(self, code: str) -> Issued | None:
        return self.live.get(code)

    def was_removed(self, code: str) -> bool:
        entry = self.dedup.get(PREFIX + code)
        return entry is not None and entry.state == REMOVED

    def of_cart(self, store: str, cart: str) -> list[Issued]:
        return [i for i in self.live.values() if i.store == store and i.cart == cart]

    def of_shopper(self, shopper: str) -> list[Issued]:
        return [i for i in self.live.values() if i.shopper == shopper]

    def of_store(self, store: str) -> list[Issued]:
        return [i for i in self.live.values() if i.store == store]

    async def issued(self, issued: Issued, now: datetime) -> None:
        """Write that the code exists (acked by the broker) and index it."""
        await self.dedup.record(PREFIX + issued.code, ISSUED, None, now, asdict(issued))
        self.live[issued.code] = issued
        if now.timestamp() - self._pruned > PRUNE_EVERY:
            self.prune(now)

    async def gone(self, code: str, why: str, now: datetime) -> None:
        """Write that the code was removed (or given up on) and forget it."""
        self.live.pop(code, None)
        await self.dedup.record(PREFIX + code, REMOVED, why, now)
