"""The pipeline in one process: stage A and stage B transitions over in-memory tables.

Feeds events in time order with the same tick boundaries as ``cartbands replay`` and returns
every record the stream would emit. Used by ``cartbands run`` (to check the stream against it),
by tests (the stream and the core agree) and by the core benchmark (replayed events/s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery.commands import audience_removal, touch_command
from recovery.ids import checkout_key
from recovery.policyset import PolicySet
from recovery.timer_index import TimerIndex

DAY = 86400.0


@dataclass
class Simulation:
    policies: PolicySet
    secret: Callable[[str], bytes]
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    shoppers: dict[str, dict[str, Any]] = field(default_factory=dict)
    touches: list[dict[str, Any]] = field(default_factory=list)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)  # ``plan`` records, same topic
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # the same due-time heaps as the agents: a tick costs what is due, not what is pending
    cart_timers: TimerIndex = field(default_factory=TimerIndex)
    shopper_timers: TimerIndex = field(default_factory=TimerIndex)

    def _set_cart(self, key: str, state: dict[str, Any]) -> None:
        self.carts[key] = state
        self.cart_timers.schedule(0, stage_a.next_due(state), state.get("seq", 0), key)

    def _set_shopper(self, key: str, state: dict[str, Any]) -> None:
        self.shoppers[key] = state
        self.shopper_timers.schedule(0, state.get("nd"), state.get("seq", 0), key)

    def _cart_seq(self, key: str) -> int | None:
        state = self.carts.get(key)
        return None if state is None else int(state.get("seq", 0))

    def _shopper_seq(self, key: str) -> int | None:
        state = self.shoppers.get(key)
        return None if state is None else int(state.get("seq", 0))

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "checkout_redacted":
            key = checkout_key(str(event.get("store")), str(event.get("checkout")))
            if stage_a.erases_checkout(event, self.carts.get(key)):
                del self.carts[key]
            return
        if isinstance(kind, str) and kind in stage_a.REDACTIONS:
            for key in [k for k, s in self.carts.items() if stage_a.erased_by(event, k, s)]:
                del self.carts[key]
            if kind == "store_redacted":
                for key in [k for k in self.shoppers if stage_b.erased_by_store(event, k)]:
                    del self.shoppers[key]
            return
        try:
            checked = stage_a.validate(event)
            _, store, checkout, _ = checked
            key = checkout_key(store, checkout)
            new, effects = stage_a.apply_event(
                self.carts.get(key), event, 0, self.policies.for_store(store), checked
            )
        except stage_a.BadEvent as exc:
            self.rejected.append((event, str(exc)))
            return
        if new is not None:
            self._set_cart(key, new)
        self._effects(effects)

    def shopper_event(self, key: str, record: dict[str, Any]) -> None:
        """Stage B applies ``record`` at once: here records come in stage A's time order
        already, which the stream's stage B restores by holding records (stage_b.hold)."""
        policy = self.policies.for_store(key.partition(":")[0])
        try:
            new, out = stage_b.apply_record(self.shoppers.get(key), key, record, 0, policy)
        except stage_a.BadEvent as exc:
            self.rejected.append((record, str(exc)))
            return
        if new is not None:
            self._set_shopper(key, new)
        self._outputs(key, out)

    def _effects(self, effects: list[stage_a.Effect]) -> None:
        for effect in effects:
            self._count(effect.kind)
            if effect.record is not None and effect.key is not None:
                self.shopper_event(effect.key, effect.record)

    def _outputs(self, key: str, out: stage_b.Outputs) -> None:
        for emission in out.touches:
            self.touches.append(touch_command(emission))
        for removal in out.audience_removals:
            self.touches.extend(
                audience_removal(removal["plan"], removal["cart"], removal["at"], removal["why"])
            )
        self.plans.extend(out.plans)
        self.recoveries.extend(out.recoveries)
        for record in out.to_every_checkout_partition:
            self.event(record)
        for record in out.redact_checkouts:
            self.event(record)

    def tick(self, now: float) -> None:
        for _due, key in self.cart_timers.pop_due(0, now, self._cart_seq):
            new, effects = stage_a.apply_tick(self.carts[key], key, now)
            if new is None:
                del self.carts[key]
            else:
                self._set_cart(key, new)
            self._effects(effects)
        for _due, key in self.shopper_timers.pop_due(0, now, self._shopper_seq):
            store = key.partition(":")[0]
            policy = self.policies.for_store(store)
            state, out = stage_b.apply_due(self.shoppers[key], key, now, policy, self.secret(store))
            self._set_shopper(key, state)
            self._outputs(key, out)


def boundaries(
    events: Iterable[tuple[float, dict[str, Any]]], step: float
) -> list[tuple[float | None, list[dict[str, Any]]]]:
    """The replay's chunks: ``(tick before the chunk or None, events)`` (see cartbands.replay)."""
    chunks: list[tuple[float | None, list[dict[str, Any]]]] = []
    boundary: float | None = None
    pending: float | None = None
    chunk: list[dict[str, Any]] = []
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
    events: list[tuple[float, dict[str, Any]]],
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
        for event in chunk:
            sim.event(event)
    last = events[-1][0] if events else watermark
    for now in drain_ticks(watermark, last, drain):
        sim.tick(now)
    return sim
