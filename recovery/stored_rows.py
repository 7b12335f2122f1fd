"""A row of a stage's table that the stage's state schema does not take.

Such a row comes from a hand edit of a changelog, or from a version that wrote a field another
way. Reading it raises; a pass over the whole table (the timer index's rebuild, a store's
erasure) must not stop the partition for it. The pass leaves the row out, the stage reports it
to the dead letters once, and the row stays in the table as it is: nothing is lost, and a fixed
version can read it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from schemas.field_reasons import field_reason

STORED = "stored state"  # how a dead letter's reason names a stored row at fault
S = TypeVar("S")


@dataclass(slots=True, frozen=True)
class UnreadableRow:
    key: str
    row: Any  # as the table holds it
    reason: str  # "field: what is wrong"

    @property
    def partition(self) -> int | None:
        """The partition the row names as its own (``pt``), if it names one."""
        found = self.row.get("pt") if isinstance(self.row, dict) else None
        return found if type(found) is int else None

    def letter(self, table: str, partition: int) -> dict[str, Any]:
        """The dead letter that reports it (``partition``: where the pass ran, if the row does
        not name its own)."""
        own = self.partition
        return {
            "reason": f"{STORED}: {self.reason}",
            "partition": partition if own is None else own,
            "key": self.key,
            "record": self.row,
            "table": table,
        }


def readable(
    rows: Iterable[tuple[str, Any]], read: Callable[[Any], S], unread: list[UnreadableRow]
) -> Iterator[tuple[str, S]]:
    """Each ``(key, row)`` with its row read by ``read``; a row the state's schema does not
    take is left out and added to ``unread``."""
    for key, row in rows:
        try:
            state = read(row)
        except msgspec.ValidationError as error:
            unread.append(UnreadableRow(key, row, field_reason(error)))
            continue
        yield key, state


def refusal(error: msgspec.ValidationError) -> str:
    """Why a record is refused when its key's stored row cannot be read: the record is not at
    fault, and the row stays as it is."""
    return f"{STORED}: {field_reason(error)}"


class Reported:
    """The keys of the unreadable rows a stage reported already: each is reported once, however
    many passes (one per partition given to the worker) leave it out."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def first_time(self, rows: list[UnreadableRow]) -> list[UnreadableRow]:
        fresh = [row for row in rows if row.key not in self._keys]
        self._keys.update(row.key for row in fresh)
        return fresh
