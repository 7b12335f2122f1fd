"""Stage A's per-partition work, without I/O: a partition's records in, a window's effects out.

:class:`CheckoutStage` folds the decoded records of ``cart-events`` (events, ticks, redactions)
into the ``checkouts`` table with the pure transitions of :mod:`recovery.checkouts`. It keeps
the window's latest state per checkout key, read before the table, so a window writes each key
once however many events and ticks touched it; the timer index of each partition, rebuilt
from the table and those states on the partition's first use; and each partition's clock.

A tick pops the checkouts whose abandonment deadline or retention has come, and is then
forwarded to every partition of ``shopper-events`` after the records this partition emitted
before it, so stage B's clock is the minimum of its upstream partitions' clocks (a watermark):
every ``cart_abandoned`` a stage-A partition emits before a tick reaches stage B before that
tick does. Bad input becomes a dead letter with its reason, never an exception.

:meth:`CheckoutStage.take` hands the window's effects to the driver (a Faust agent, or an
in-memory pipeline), which produces the records, in order, before it writes the states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import UNSET, Raw

from recovery import checkouts as stage_a
from recovery.checkout_state import CheckoutState, own_state
from recovery.checkouts import BadEvent, Effect
from recovery.clock import BadTick, PartitionClocks, tick, tick_time
from recovery.ids import checkout_key
from recovery.policyset import PolicySet
from recovery.stage_effects import (
    DEAD_LETTERS,
    SHOPPER_EVENTS,
    Effects,
    Failure,
    Outgoing,
    Refused,
    StateTable,
    TimersFired,
)
from recovery.stored_rows import Reported, UnreadableRow, readable, refusal
from recovery.timer_index import TimerIndex
from schemas.cart_events import CartEvent, cart_event_of, record_of

Checked = tuple[str, str, str, float]  # what stage_a.validate returns
TABLE = "checkouts"  # the table the agent keeps the states in

# cart events read, by (platform, type) as sent; None where the field is not text
EventsRead = dict[tuple[str | None, str | None], int]


def event_label(record: Any) -> tuple[str | None, str | None]:
    """How a cart event is counted: ``(platform, type)``; a canonical event without
    ``platform`` is a generic one (the schemas' default)."""
    if not isinstance(record, dict):
        return (None, None)
    platform = record.get("platform", "generic")
    kind = record.get("type")
    return (
        platform if isinstance(platform, str) else None,
        kind if isinstance(kind, str) else None,
    )


def typed_label(event: CartEvent) -> tuple[str | None, str | None]:
    """:func:`event_label` of the record ``event`` was read from."""
    platform = event.platform
    return ("generic" if platform is UNSET else platform, event.type)


@dataclass(slots=True, frozen=True)
class Erased:
    """A store's or a shopper's redaction and how many checkouts it erased on the partition."""

    kind: str
    partition: int
    count: int


@dataclass(slots=True)
class CheckoutEffects(Effects):
    """A window of stage A: the writes and records of :class:`Effects`, and what the driver
    counts and logs of it."""

    events_read: EventsRead = field(default_factory=dict)
    cart_effects: list[Effect] = field(default_factory=list)  # every transition's, in order
    erased: list[Erased] = field(default_factory=list)
    rebuilt: list[tuple[int, int]] = field(default_factory=list)  # (partition, timers)


class CheckoutStage:
    """Stage A over the partitions this driver holds; ``table`` reads the ``checkouts``
    states it holds (with the writes it has taken but not stored yet)."""

    def __init__(self, policies: PolicySet, partitions: int, table: StateTable) -> None:
        self._policies = policies
        self._partitions = partitions
        self._table = table
        self._index = TimerIndex()
        self._clocks = PartitionClocks()
        # the window's own state per checkout key (None: delete), with the key's partition
        self._pending: dict[str, tuple[int, CheckoutState | None]] = {}
        self._effects = CheckoutEffects()
        self._reported = Reported()

    @property
    def pending(self) -> int:
        """How many checkouts the window has states for (one write each)."""
        return len(self._pending)

    def take(self) -> CheckoutEffects:
        """The window's effects, and a new window: the driver produces ``records`` in order,
        then stores ``writes``."""
        effects = self._effects
        effects.writes = self._pending
        self._pending = {}
        self._effects = CheckoutEffects()
        return effects

    def revoked(self) -> None:
        """Partitions were given back: every partition's timers are rebuilt on next use, and
        its clock starts again from the ticks read from then on (see PartitionClocks)."""
        self._index.forget_all()
        self._clocks.forget_all()

    def refuse(self, partition: int, record: Any, reason: str) -> None:
        """Dead-letter a malformed ``record``: one the driver could not decode, or one of
        :meth:`fold`'s, in the window's order."""
        self._refuse(partition, record, reason, None)

    def fold(self, partition: int, records: list[Any]) -> None:
        """Fold one message's records, read from ``partition``, in order. A bad record is
        dead-lettered and the next one folded."""
        self._ensure_index(partition)
        seen = self._effects.events_read
        for record in records:
            kind = record.get("type") if isinstance(record, dict) else None
            if kind == "tick":
                try:
                    now = tick_time(record)
                except BadTick as bad_tick:  # names apart: mypyc types one name once
                    self.refuse(partition, record, str(bad_tick))
                    continue
                self._tick(partition, now)
                continue
            if isinstance(kind, str) and kind in stage_a.REDACTIONS:
                self._erase(partition, record)
                continue
            if kind == "checkout_redacted":
                key = checkout_key(str(record.get("store")), str(record.get("checkout")))
                try:
                    state = self._state_of(key)
                except BadEvent:
                    erased = True  # an unreadable row: no activity to tell it is newer
                else:
                    erased = stage_a.erases_checkout(record, state)
                if erased:
                    self._keep(partition, key, None)
                continue
            label = event_label(record)
            seen[label] = seen.get(label, 0) + 1
            try:
                event = stage_a.read_event(record)
                self._apply(partition, event, stage_a.validate(event))
            except Exception as error:  # a bug must not stop the partition either
                self._dead_letter(partition, record, error)

    def fold_events(
        self, partition: int, events: list[CartEvent], sent: Callable[[], list[Any]]
    ) -> bool:
        """Fold one message's cart events, read from ``partition`` straight into structs
        (``schemas.cart_events.cart_events_in``), in order, when every one of them passes
        validation; False, with nothing folded, when one does not: the driver then decodes
        the message and folds its records with :meth:`fold`, which dead-letters that one as
        it was sent. ``sent`` decodes the message's records, for a dead letter."""
        try:
            checked = [stage_a.validate(event) for event in events]
        except BadEvent:
            return False
        self._ensure_index(partition)
        seen = self._effects.events_read
        for n, event in enumerate(events):
            label = typed_label(event)
            seen[label] = seen.get(label, 0) + 1
            try:
                self._apply(partition, event, checked[n])
            except Exception as error:  # a bug must not stop the partition either
                self._dead_letter(partition, sent()[n], error)
        return True

    def fold_raw(self, partition: int, raws: list[Raw]) -> None:
        """Fold a batch message's records, read from ``partition``, each given as its JSON: a
        cart event is read straight into a struct (``schemas.cart_events.cart_event_of``),
        any other record (a tick, a redaction, a cart event of the wrong types) is decoded and
        folded as :meth:`fold` folds it. A refused record is dead-lettered as it was sent."""
        self._ensure_index(partition)
        seen = self._effects.events_read
        for raw in raws:
            event = cart_event_of(raw)
            if event is None:
                self.fold(partition, [record_of(raw)])
                continue
            label = typed_label(event)
            seen[label] = seen.get(label, 0) + 1
            try:
                self._apply(partition, event, stage_a.validate(event))
            except Exception as error:  # a bug must not stop the partition either
                self._dead_letter(partition, record_of(raw), error)

    def _apply(self, partition: int, event: CartEvent, checked: Checked) -> None:
        """Fold one validated event; raises BadEvent (or a bug's error) with nothing kept."""
        _, store, checkout, _ = checked
        key = checkout_key(store, checkout)
        state = self._state_of(key)
        folded = stage_a.already_folded(state, event)
        policy = self._policies.for_store(store)
        new, effects = stage_a.apply_event(state, event, partition, policy, checked)
        if not folded:
            self._keep(partition, key, new)
        self._emit(effects)

    def _dead_letter(self, partition: int, record: Any, error: Exception) -> None:
        """A cart event that could not be folded: refused with the field at fault, or, for a
        bug of ours, as an internal error that keeps the exception."""
        if isinstance(error, BadEvent):
            self.refuse(partition, record, str(error))
        else:
            reason = f"internal error: {type(error).__name__}: {error}"
            self._refuse(partition, record, reason, error)

    def _refuse(self, partition: int, record: Any, reason: str, error: Failure | None) -> None:
        self._effects.refused.append(Refused(partition, reason, error))
        letter = {"reason": reason, "partition": partition, "record": record}
        self._effects.records.append(Outgoing(DEAD_LETTERS, letter))

    def _state_of(self, key: str) -> CheckoutState | None:
        """The window's own state of ``key``: read from the table on the window's first use."""
        found = self._pending.get(key)
        if found is not None:
            return found[1]
        stored = self._table.get(key)
        if stored is None:
            return None
        try:
            return own_state(stored)
        except msgspec.ValidationError as error:
            raise BadEvent(refusal(error)) from None

    def _current(self, key: str) -> tuple[float | None, int] | None:
        """The checkout's next due time and timer sequence, for the timer index."""
        found = self._pending.get(key)
        if found is not None:
            state = found[1]
            return None if state is None else (stage_a.next_due(state), state.seq)
        stored = self._table.get(key)
        if stored is None:
            return None
        if type(stored) is not CheckoutState:
            stored = own_state(stored)  # a row restored from the changelog
        return stage_a.next_due(stored), stored.seq

    def _keep(self, partition: int, key: str, state: CheckoutState | None) -> None:
        """Keep ``state`` for the window's writes and schedule its next due time."""
        self._pending[key] = (partition, state)
        # a partition whose index a rebalance dropped mid-window is rebuilt from the table
        if state is not None and self._index.built(partition):
            self._index.schedule(partition, stage_a.next_due(state), state.seq, key)

    def _every_state(self, unread: list[UnreadableRow]) -> Iterator[tuple[str, CheckoutState]]:
        """Each checkout's state: the window's own, else the table's; a row that cannot be
        read is left out and added to ``unread``."""
        pending = self._pending
        rows = ((key, row) for key, row in self._table.items() if row and key not in pending)
        yield from readable(rows, own_state, unread)
        for key, (_, state) in list(pending.items()):
            if state is not None:
                yield key, state

    def _ensure_index(self, partition: int) -> None:
        """Rebuild the heaps of every partition not indexed yet, in one pass over the table."""
        if self._index.built(partition):
            return
        entries: dict[int, list[tuple[float, int, str]]] = {partition: []}
        unread: list[UnreadableRow] = []
        # the table, and the window's states not written to it yet (after a rebalance)
        for key, state in self._every_state(unread):
            if self._index.built(owner := state.pt):
                continue
            due = stage_a.next_due(state)
            if due is not None:
                entries.setdefault(owner, []).append((due, state.seq, key))
        for owner, found in entries.items():
            self._index.rebuild(owner, found)
            self._effects.rebuilt.append((owner, len(found)))
        self._effects.report_unreadable(self._reported.first_time(unread), TABLE, partition)

    def _erase(self, partition: int, record: dict[str, Any]) -> None:
        """A store's or a shopper's redaction: forget their checkouts on this partition, those
        in the table and those only in the window. A row that cannot be read goes by its key
        and the partition it names, and a shopper's redaction by the shopper it names."""
        unread: list[UnreadableRow] = []
        doomed = [
            key
            for key, state in self._every_state(unread)
            if state.pt == partition and stage_a.erased_by(record, key, state)
        ]
        doomed += [
            row.key
            for row in unread
            if row.partition == partition and stage_a.erases_unreadable(record, row.key, row.row)
        ]
        for key in doomed:
            self._keep(partition, key, None)
        self._effects.erased.append(Erased(str(record.get("type")), partition, len(doomed)))

    def _emit(self, effects: list[Effect]) -> None:
        """Queue the records for stage B, keyed by their shopper (the driver sends each to the
        partition its key hashes to)."""
        if not effects:
            return
        self._effects.cart_effects.extend(effects)
        records = self._effects.records
        for effect in effects:
            if effect.record is not None and effect.key is not None:
                record = effect.record
                if record.shopper != effect.key:
                    record = msgspec.structs.replace(record, shopper=effect.key)
                records.append(Outgoing(SHOPPER_EVENTS, record, key=effect.key))

    def _tick(self, partition: int, now: float) -> None:
        now = self._clocks.advance(partition, now)
        fired = self._index.pop_due(partition, now, self._current)
        for _due, key in fired:
            state = self._state_of(key)
            if not state:
                continue
            new, effects = stage_a.apply_tick(state, key, now)
            self._keep(partition, key, new)
            self._emit(effects)
        self._effects.timers.append(
            TimersFired("carts", now, [due for due, _ in fired], self._index.pending())
        )
        # after every record this partition emitted up to now, so they all reach stage B
        # before the tick does
        forwarded = tick(now, partition, self._partitions)
        records = self._effects.records
        for target in range(self._partitions):
            records.append(Outgoing(SHOPPER_EVENTS, forwarded, partition=target))
