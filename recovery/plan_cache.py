"""Plans re-derived from a shopper's stored plan inputs, remembered by those inputs.

Stage B does not store a plan: it re-derives it from the inputs kept in state (the cart
snapshot, the profile at planning time, the abandonment time and cycle) whenever it needs the
touches (scheduling, due touches, ending the plan). :func:`recovery.plan.plan_recovery` is a
pure function of those inputs and the store's policy, so an equal key gives an equal plan;
remembering the last few thousand saves re-planning the same cart on every transition.

The key is the inputs' content, not their identity: a table backed by RocksDB hands back a
fresh state on every read. A changed policy (a reload) is a miss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from recovery.model import Cart, Plan
from recovery.policy import StorePolicy
from recovery.shopper_state import PlanInputs

Derived = tuple[Plan, Cart]
_encode = msgspec.json.Encoder().encode
MAX_ENTRIES = 16_384


class PlanCache:
    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._entries: dict[tuple[Any, ...], tuple[StorePolicy, Derived]] = {}

    @staticmethod
    def key(shopper: str, pl: PlanInputs, last_order: Any) -> tuple[Any, ...] | None:
        try:
            inputs = _encode((pl.c, pl.pp))
        except (TypeError, ValueError, OverflowError):
            return None
        return (shopper, pl.ck, pl.cy, pl.at, last_order, inputs)

    def get(
        self,
        key: tuple[Any, ...] | None,
        policy: StorePolicy,
        derive: Callable[[], Derived],
    ) -> Derived:
        if key is None:
            return derive()
        found = self._entries.get(key)
        if found is not None and found[0] is policy:
            return found[1]
        derived = derive()
        self.put(key, policy, derived)
        return derived

    def put(self, key: tuple[Any, ...] | None, policy: StorePolicy, derived: Derived) -> None:
        if key is None:
            return
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (policy, derived)
