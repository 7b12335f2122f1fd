"""What a stage processor hands its driver: table writes and outgoing records, no I/O.

A stage processor (:mod:`recovery.checkout_stage`, :mod:`recovery.shopper_stage`) takes the
decoded records of one partition and ticks, and collects its effects here over a window;
the driver (a Faust agent, or the in-memory pipeline of :mod:`recovery.simulate`) takes them,
writes the states, produces the records, and only then acknowledges the window's input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from recovery.stored_rows import UnreadableRow
from schemas.shopper_events import ShopperEvent

# a stage's state of one key, as its table holds it: stage A's
# recovery.checkout_state.CheckoutState, stage B's recovery.shopper_state.ShopperState (each a
# dict where a changelog restored it)
State = Any

# a record to produce: decoded JSON, or a typed shopper-events record (encoded as it is)
Record = dict[str, Any] | ShopperEvent

# where an outgoing record goes, by role: the driver maps each to its topic
SHOPPER_EVENTS = "shopper-events"
CART_EVENTS = "cart-events"
DEAD_LETTERS = "dead-letters"
RECOVERIES = "recoveries"
TOUCHES = "touches."  # + the channel: "touches.email"


def touches_of(channel: str) -> str:
    return TOUCHES + channel


# Exception under a name of this module: compiled by mypyc, a dataclass resolves its fields'
# annotations in the module's globals, which do not hold the builtins
Failure = Exception


class StateTable(Protocol):
    """A stage's table as its processor reads it: the states this driver holds."""

    def get(self, key: str) -> State | None: ...

    def items(self) -> Iterable[tuple[str, State | None]]: ...


@dataclass(slots=True, frozen=True)
class Outgoing:
    """A record to produce. ``partition`` None: the partition its key hashes to (or any, for
    a record without a key); records to one partition leave in the order they were made."""

    to: str
    record: Record
    key: str | None = None
    partition: int | None = None


@dataclass(slots=True, frozen=True)
class Refused:
    """A record sent to the dead letters on ``partition`` with its ``reason``: a malformed one
    (the reason names the field at fault), or one our own code failed on (``error``: the
    exception, for the driver to log with its traceback)."""

    partition: int
    reason: str
    error: Failure | None = None

    @property
    def malformed(self) -> bool:
        """The record was at fault, not our code."""
        return self.error is None


@dataclass(slots=True, frozen=True)
class TimersFired:
    """One tick's pass over a partition's timers, for the driver's metrics."""

    stage: str  # "carts" | "recovery"
    now: float
    due: list[float]
    pending: int


@dataclass(slots=True)
class Effects:
    """A window's effects, in the order the driver must keep: ``records`` are produced before
    ``writes`` are stored (a crash between the two re-reads the window and sends the records
    again, rather than keeping states whose records were never sent)."""

    # the window's latest state per key (None: delete), with the key's partition
    writes: dict[str, tuple[int, State | None]] = field(default_factory=dict)
    records: list[Outgoing] = field(default_factory=list)
    timers: list[TimersFired] = field(default_factory=list)
    # one per record of ``records`` sent to the dead letters, for the driver to count and log
    refused: list[Refused] = field(default_factory=list)
    # rows of the table a pass left out, each reported once in ``records`` (recovery.stored_rows)
    unreadable: list[UnreadableRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.writes or self.records)

    def report_unreadable(self, rows: list[UnreadableRow], table: str, partition: int) -> None:
        """Rows of ``table`` a pass on ``partition`` left out: each to the dead letters."""
        for row in rows:
            self.unreadable.append(row)
            self.records.append(Outgoing(DEAD_LETTERS, row.letter(table, partition)))
