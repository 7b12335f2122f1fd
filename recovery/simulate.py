"""The pipeline in one process: the stream's own stage processors, driven in memory.

:class:`Simulation` drives :class:`recovery.checkout_stage.CheckoutStage` and
:class:`recovery.shopper_stage.ShopperStage` (what the Faust agents drive) over dict tables on
one partition: each stage's records go straight to the other (stage A's abandonments, orders
and forwarded ticks to stage B; stage B's redactions back to stage A), touch commands and the
ledger's records are kept. Events are fed in time order with the same tick boundaries as
``cartbands replay``. Used by ``cartbands run`` (to check the stream against it), by tests (the
stream and the core agree) and by the core benchmark (replayed events/s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from recovery.checkout_stage import CheckoutStage
from recovery.clock import tick
from recovery.policyset import PolicySet
from recovery.shopper_stage import ShopperStage
from recovery.stage_effects import (
    CART_EVENTS,
    DEAD_LETTERS,
    RECOVERIES,
    SHOPPER_EVENTS,
    TOUCHES,
    Effects,
    State,
)
from schemas.cart_events import CartEvent

DAY = 86400.0
# an event as the simulator takes it: its record, or a cart event read into its struct
Incoming = dict[str, Any] | CartEvent
E = TypeVar("E")  # whatever the events are: a replay's records, the simulator's Incoming


def _as_sent(events: list[CartEvent]) -> list[dict[str, Any]]:
    """Typed cart events as the records they were read from (for a dead letter)."""
    return [msgspec.to_builtins(event) for event in events]


class MemoryTable:
    """A stage's table as a dict the simulation holds (and tests read)."""

    def __init__(self, states: dict[str, State]) -> None:
        self.states = states

    def get(self, key: str) -> State | None:
        return self.states.get(key)

    def items(self) -> Iterator[tuple[str, State | None]]:
        return iter(list(self.states.items()))

    def store(self, effects: Effects) -> None:
        self.store_rows(effects.writes)

    def store_rows(self, writes: dict[str, tuple[int, State | None]]) -> None:
        for key, (_partition, state) in writes.items():
            if state is None:
                self.states.pop(key, None)
            else:
                self.states[key] = state


@dataclass
class Simulation:
    policies: PolicySet
    secret: Callable[[str], bytes]
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    shoppers: dict[str, dict[str, Any]] = field(default_factory=dict)
    touches: list[dict[str, Any]] = field(default_factory=list)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)  # ``plan`` records, same topic
    rejected: list[tuple[Any, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # stage A's transitions by kind
    clocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage B's ticks read

    def __post_init__(self) -> None:
        self._cart_table = MemoryTable(self.carts)
        self._shopper_table = MemoryTable(self.shoppers)
        self._clock_table = MemoryTable(self.clocks)
        self._carts = CheckoutStage(self.policies, 1, self._cart_table)
        self._shoppers = ShopperStage(
            self.policies, self.secret, 1, self._shopper_table, self._clock_table
        )
        self._shopper_offset = 0  # the next message's offset on the one ``shopper-events``

    def event(self, event: Any) -> None:
        """An event as the gateway hands it on (see :meth:`events`)."""
        self.events([event])

    def events(self, events: list[Any]) -> None:
        """Events as the gateway hands them on, in order (records, or cart events read into
        structs): to ``cart-events``, and a store's redaction to ``shopper-events`` too (it
        erases the store's shoppers there)."""
        start = 0
        for end, event in enumerate(events):
            if isinstance(event, dict) and event.get("type") == "store_redacted":
                self._cart_events(events[start : end + 1])
                self.shopper_events([event])
                start = end + 1
        if start < len(events):
            self._cart_events(events[start:] if start else events)

    def tick(self, now: float) -> None:
        self._cart_events([tick(now)])

    def _cart_events(self, records: list[Any]) -> None:
        """Records on ``cart-events``: cart events, redactions, ticks; or cart events already
        read into structs at the edge, folded as the agent folds a message it read so."""
        if records and all(type(record) is CartEvent for record in records):
            if not self._carts.fold_events(0, records, lambda: _as_sent(records)):
                self._carts.fold(0, _as_sent(records))
        else:
            self._carts.fold(0, records)
        effects = self._carts.take()
        self._cart_table.store(effects)
        for effect in effects.cart_effects:
            self.counts[effect.kind] = self.counts.get(effect.kind, 0) + 1
        self._route(effects)

    def shopper_events(self, records: list[Any], key: str | None = None) -> None:
        """A message on ``shopper-events``: its records, and its key (``store:shopper``) for
        a record that does not name its shopper (stage A's records and ticks need none)."""
        self._shoppers.fold(0, key, records, self._shopper_offset)
        self._shopper_offset += 1
        effects = self._shoppers.take()
        self._shopper_table.store(effects)
        self._clock_table.store_rows(effects.clocks)
        self._route(effects)

    def _route(self, effects: Effects) -> None:
        """Each record where the stream's topics would take it, in order; stage B takes a run
        of its records in one go, as the stream's windows do. The writes are in the tables
        already: a stage reads them there from its next record on."""
        run: list[Any] = []
        for out in effects.records:
            to, record = out.to, out.record
            if to == SHOPPER_EVENTS:
                run.append(record)
                continue
            if run:
                self.shopper_events(run)
                run = []
            if not isinstance(record, dict):  # typed: stage A's records for shopper-events
                raise TypeError(f"a typed record for {to}: {record!r}")
            if to.startswith(TOUCHES):
                self.touches.append(record)
            elif to == RECOVERIES:
                (self.plans if record.get("type") == "plan" else self.recoveries).append(record)
            elif to == CART_EVENTS:
                self._cart_events([record])
            elif to == DEAD_LETTERS:
                self.rejected.append((record.get("record"), str(record.get("reason"))))
        if run:
            self.shopper_events(run)


def boundaries(
    events: Iterable[tuple[float, E]], step: float
) -> list[tuple[float | None, list[E]]]:
    """The replay's chunks: ``(tick before the chunk or None, events)`` (see cartbands.replay)."""
    chunks: list[tuple[float | None, list[E]]] = []
    boundary: float | None = None
    pending: float | None = None
    chunk: list[E] = []
    for at, event in events:
        if boundary is None:
            boundary = at + step
        if at >= boundary:
            if chunk:
                chunks.append((pending, chunk))
                chunk = []
            pending = at
            boundary = at + step
        chunk.append(event)
    if chunk:
        chunks.append((pending, chunk))
    return chunks


def drain_ticks(watermark: float, last: float, drain: float) -> list[float]:
    """Ticks after the last event: one a day until ``last + drain``."""
    out = []
    now = max(watermark, last)
    end = last + drain
    while now < end:
        now = min(end, now + DAY)
        out.append(now)
    return out


def simulate(
    events: Sequence[tuple[float, Incoming]],
    policies: PolicySet,
    secret: Callable[[str], bytes],
    tick_step: float = 300.0,
    drain: float = 8 * DAY,
) -> Simulation:
    sim = Simulation(policies, secret)
    watermark = events[0][0] if events else 0.0
    for tick_at, chunk in boundaries(events, tick_step):
        if tick_at is not None:
            sim.tick(tick_at)
            watermark = tick_at
        sim.events(chunk)
    last = events[-1][0] if events else watermark
    for now in drain_ticks(watermark, last, drain):
        sim.tick(now)
    return sim
