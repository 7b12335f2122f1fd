"""Stage B's work on its partitions, pure: :class:`ShopperStage` folds the records of
``shopper-events`` (key ``store:shopper``) into the shoppers' states and collects what the
driver must do about them in :class:`ShopperEffects`.

Per record: a tick advances the partition's watermark (:class:`recovery.clock.Watermarks`, the
minimum of the ticks forwarded by every stage-A partition) and fires the shoppers whose next
due time it reached (their held records released, then their due touches decided); a
``store_redacted`` erases the store's shoppers of the partition; any other record is held in
the shopper's row while it is ahead of the watermark (:mod:`recovery.shopper_holds`; only when
several stage-A partitions feed the stage), else applied at once. A record that cannot be
taken is dead-lettered with its reason, and the next one goes on.

The stage reads states through the window's own writes first, then the driver's table; the
driver takes the window's effects (:meth:`ShopperStage.take`), produces the records, writes
the states to that table, and only then acknowledges the window's input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from recovery import shopper_holds as holding
from recovery import shoppers as stage_b
from recovery.checkouts import BadEvent
from recovery.clock import BadTick, Watermarks, tick_time
from recovery.commands import audience_removal, touch_command
from recovery.ids import checkout_key
from recovery.policy import StorePolicy
from recovery.policyset import PolicySet
from recovery.shopper_records import erased_by_store, shopper_event
from recovery.shopper_state import ShopperState, stored_shopper
from recovery.stage_effects import (
    CART_EVENTS,
    DEAD_LETTERS,
    RECOVERIES,
    Effects,
    Failure,
    Outgoing,
    Refused,
    State,
    StateTable,
    TimersFired,
    touches_of,
)
from recovery.stored_rows import Reported, UnreadableRow, readable, refusal
from recovery.timer_index import TimerIndex
from schemas.shopper_events import TYPES, AnyShopperEvent, ShopperEvent, as_sent

# the topic stage B reads, as its dead letters name it
SOURCE = "shopper-events"
TABLE = "shoppers"


@dataclass(slots=True, frozen=True)
class DueFailure:
    """A shopper whose due work failed: skipped until its state changes, the others go on."""

    partition: int
    key: str
    error: Failure


@dataclass(slots=True)
class ShopperEffects(Effects):
    """A window's effects, and what the driver counts and logs about them."""

    # every transition's outputs with its shopper key, in order (decision metrics)
    outputs: list[tuple[str, stage_b.Outputs]] = field(default_factory=list)
    due_failures: list[DueFailure] = field(default_factory=list)
    # (partition, shoppers erased) per store redaction
    erased: list[tuple[int, int]] = field(default_factory=list)
    # (partition, timers pending) per timer index rebuilt from the table
    rebuilt: list[tuple[int, int]] = field(default_factory=list)
    # the ticks each partition has read (recovery.clock.Watermarks.row), for the driver's
    # ``watermarks`` table, under the partition's number
    clocks: dict[str, tuple[int, State | None]] = field(default_factory=dict)


def store_of(key: str) -> str:
    return key.partition(":")[0]


class ShopperStage:
    """Stage B over the partitions a driver holds. ``table``: the driver's ``shoppers`` table
    (every state it holds, of every partition); ``clocks``: its ``watermarks`` table (the
    ticks each partition has read, :attr:`ShopperEffects.clocks`). The effects a :meth:`take`
    returns must be in them before the next :meth:`fold` (the stage forgets them once
    taken)."""

    def __init__(
        self,
        policies: PolicySet,
        secret: Callable[[str], bytes],
        partitions: int,
        table: StateTable,
        clocks: StateTable,
    ) -> None:
        self._policies = policies
        self._secret = secret
        self._partitions = partitions
        self._table = table
        self._clocks = clocks
        self._index = TimerIndex()
        self._watermarks = Watermarks()
        self._restored: set[int] = set()  # partitions whose ticks were taken from ``clocks``
        self._ticked: set[int] = set()  # partitions whose ticks changed since the last take
        self._reported = Reported()
        self._effects = ShopperEffects()

    # -- the driver's calls

    def fold(self, partition: int, key: str | None, records: list[Any], offset: int) -> None:
        """One message's records, read from ``partition`` at ``offset`` with the message's
        ``key``; a partition's messages in offset order from where it is (re)started. Never
        raises for a record: one that cannot be taken is dead-lettered and the next goes on."""
        self._ensure_index(partition)
        if partition not in self._restored:
            self._restore_clock(partition, offset)
        for record in records:
            try:
                typed: AnyShopperEvent | None = None
                if isinstance(record, dict):
                    if record.get("type") == "tick":
                        tick_time(record)
                        self._on_tick(partition, record, offset)
                        continue
                    if record.get("type") == "store_redacted":
                        self._erase_store(partition, record)
                        continue
                    shopper = record.get("shopper") or key
                elif isinstance(record, TYPES):  # typed already: stage A's, in process
                    typed = record
                    shopper = typed.shopper or key
                else:
                    raise BadEvent("event: expected a JSON object")
                if not isinstance(shopper, str) or ":" not in shopper:
                    raise BadEvent("shopper: missing store:shopper key")
                event = shopper_event(record) if typed is None else typed
                self._on_record(partition, shopper, event)
            # one name per clause: compiled with mypyc, a name shared by two clauses takes the
            # first clause's type, and the second raises TypeError instead of catching
            except (BadEvent, BadTick) as refused:
                self.dead_letter(partition, record, str(refused))
            except Exception as exc:  # a bug must not stop the partition
                reason = f"internal error: {type(exc).__name__}: {exc}"
                self.dead_letter(partition, record, reason, exc)

    def dead_letter(
        self, partition: int, record: Any, reason: str, error: Failure | None = None
    ) -> None:
        """A record stage B cannot take (or a message the driver could not decode, as text):
        to the dead letters with its reason, so it is neither lost silently nor in the way of
        the shopper's next record."""
        self._effects.refused.append(Refused(partition, reason, error))
        if isinstance(record, ShopperEvent):
            record = as_sent(record)
        dead = {"reason": reason, "partition": partition, "record": record, "topic": SOURCE}
        self._effects.records.append(Outgoing(DEAD_LETTERS, dead))

    def take(self) -> ShopperEffects:
        """The effects since the last take, in the order they were made; the stage starts
        afresh (its reads go to the table again)."""
        effects, self._effects = self._effects, ShopperEffects()
        for partition in sorted(self._ticked):
            row = self._watermarks.row(partition)
            if row is not None:
                effects.clocks[str(partition)] = (partition, row)
        self._ticked.clear()
        return effects

    def revoked(self) -> None:
        """Partitions were taken away (or given back): forget the timers and watermarks. A
        partition is read again from its committed offset, possibly before ticks read here
        already; its timers are rebuilt from the table on its next message."""
        self._index.forget_all()
        self._watermarks.forget_all()
        self._restored.clear()
        # a partition forgotten is not written: its ticks in the table are the ones it read
        self._ticked.clear()

    # -- states

    def _state_of(self, key: str) -> ShopperState | None:
        found = self._effects.writes.get(key)
        if found is not None:
            return found[1]
        try:
            return stored_shopper(self._table.get(key))
        except msgspec.ValidationError as error:
            raise BadEvent(refusal(error)) from None

    def _items(self, unread: list[UnreadableRow]) -> Iterator[tuple[str, ShopperState | None]]:
        """The table's states with the window's writes not in it yet; a row that cannot be
        read is left out and added to ``unread``."""
        writes = self._effects.writes
        rows = ((key, row) for key, row in self._table.items() if key not in writes)
        yield from readable(rows, stored_shopper, unread)
        for key, (_, written) in list(writes.items()):
            yield key, written

    def _current(self, key: str) -> tuple[float | None, int] | None:
        """The shopper's next due time and timer sequence, for the timer index."""
        state = self._state_of(key)
        return (holding.due_of(state), state.seq) if state is not None else None

    def _write(self, partition: int, key: str, state: ShopperState | None) -> None:
        """Keep a new state of the shopper and schedule its next due time; None: nothing
        changed (a transition returns None when it leaves no row to write)."""
        if state is None:
            return
        self._effects.writes[key] = (partition, state)
        # a partition whose index was forgotten is rebuilt from the table and these writes
        if self._index.built(partition):
            self._index.schedule(partition, holding.due_of(state), state.seq, key)

    def _delete(self, partition: int, key: str) -> None:
        self._effects.writes[key] = (partition, None)

    def _ensure_index(self, partition: int) -> None:
        """Rebuild the heaps of every partition not indexed yet, in one pass over the table."""
        if self._index.built(partition):
            return
        entries: dict[int, list[tuple[float, int, str]]] = {partition: []}
        unread: list[UnreadableRow] = []
        for key, state in self._items(unread):
            if state is None or (due := holding.due_of(state)) is None:
                continue
            if self._index.built(owner := state.pt):
                continue
            entries.setdefault(owner, []).append((due, state.seq, key))
        for owner, found in entries.items():
            self._index.rebuild(owner, found)
            self._effects.rebuilt.append((owner, len(found)))
        self._effects.report_unreadable(self._reported.first_time(unread), TABLE, partition)

    # -- records

    def _policy_of(self, key: str) -> StorePolicy:
        return self._policies.for_store(store_of(key))

    def _on_record(self, partition: int, key: str, record: AnyShopperEvent) -> None:
        state = self._state_of(key)
        # From a single stage-A partition records arrive in stage A's time order already, and
        # a record held would be released before the touches due at the next tick, which is
        # where applying it now puts it too: holding is only needed with several.
        if self._partitions > 1 and holding.holds(record, self._watermarks.current(partition)):
            self._write(partition, key, holding.hold(state, record, partition))
            return
        new, out = holding.apply_now(state, key, record, partition, self._policy_of(key))
        self._write(partition, key, new)
        self._perform(partition, key, out)

    def _restore_clock(self, partition: int, offset: int) -> None:
        """The ticks ``partition`` read before ``offset``, where it is read from again."""
        self._watermarks.restore(partition, self._clocks.get(str(partition)), offset)
        self._restored.add(partition)

    def _on_tick(self, partition: int, record: dict[str, Any], offset: int) -> None:
        now = self._watermarks.advance(partition, record, offset)
        self._ticked.add(partition)
        if now is None:
            return
        fired = self._index.pop_due(partition, now, self._current)
        for _due, key in fired:
            state = self._state_of(key)
            if state is None:
                continue
            try:
                self._on_due(partition, key, state, now)
            except Exception as exc:  # one shopper's failure must not stop the others'
                self._effects.due_failures.append(DueFailure(partition, key, exc))
        dues = [due for due, _ in fired]
        self._effects.timers.append(TimersFired("recovery", now, dues, self._index.pending()))

    def _on_due(self, partition: int, key: str, state: ShopperState, now: float) -> None:
        """The watermark reached the shopper: its held records up to now, then due touches."""
        policy = self._policy_of(key)
        outs: list[stage_b.Outputs] = []
        current: ShopperState | None = state
        if state.qd is not None and state.qd <= now:
            current, released = holding.release(state, key, now, partition, policy)
            outs.extend(released)
        if current is not None and current.nd is not None and current.nd <= now:
            secret = self._secret(store_of(key))
            current, out = stage_b.apply_due(current, key, now, policy, secret)
            outs.append(out)
        if current is None:
            self._delete(partition, key)
        else:
            self._write(partition, key, current)
        for out in outs:
            self._perform(partition, key, out)

    def _erase_store(self, partition: int, record: dict[str, Any]) -> None:
        """A store's redaction: forget every shopper of that store on this partition, those
        whose row cannot be read included (by the partition the row names)."""
        unread: list[UnreadableRow] = []
        doomed = [
            key
            for key, state in self._items(unread)
            if state is not None and state.pt == partition and erased_by_store(record, key)
        ]
        doomed += [
            row.key
            for row in unread
            if row.partition == partition and erased_by_store(record, row.key)
        ]
        for key in doomed:
            self._delete(partition, key)
        self._effects.erased.append((partition, len(doomed)))

    def _perform(self, partition: int, key: str, out: stage_b.Outputs) -> None:
        """A transition's outputs as records, in the order the shell has always sent them."""
        records = self._effects.records
        for record, reason in out.rejected:
            self.dead_letter(partition, record, reason)
        for emission in out.touches:
            command = touch_command(emission)
            records.append(Outgoing(touches_of(emission.touch.channel), command, key))
        for removal in out.audience_removals:
            plan, cart, why = removal["plan"], removal["cart"], removal["why"]
            for command in audience_removal(plan, cart, removal["at"], why):
                records.append(Outgoing(touches_of("ads"), command, key))
        for record in (*out.plans, *out.recoveries):
            records.append(Outgoing(RECOVERIES, record, key))
        self._effects.outputs.append((key, out))
        for record in out.to_every_checkout_partition:
            for target in range(self._partitions):
                records.append(Outgoing(CART_EVENTS, record, partition=target))
        for record in out.redact_checkouts:
            erased = checkout_key(record["store"], record["checkout"])
            records.append(Outgoing(CART_EVENTS, record, erased))
