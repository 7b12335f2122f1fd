"""Stage B's holding of records by watermark (pure): a shopper's records come from every
stage-A partition, each at its own pace, and are applied in stage A's time order.

A record stage A stamped (``sk``) beyond the partition's watermark waits in the shopper's row
(``q``, its first time ``qd``) until the watermark passes it; :func:`release` then applies the
ready ones in order through :func:`recovery.shoppers.apply_record`. The agents and the
simulator call these instead of the transitions directly.
"""

from __future__ import annotations

from recovery.checkouts import TICK_PHASE, BadEvent
from recovery.policy import StorePolicy
from recovery.shopper_records import abandonment_of, given_at, order_key
from recovery.shopper_state import ShopperState, copied
from recovery.shoppers import Outputs, apply_record
from schemas.shopper_events import AnyShopperEvent, CartAbandoned, as_sent


def _held_order(record: AnyShopperEvent) -> tuple[float, int, str, str]:
    at, phase = order_key(record) or (float("-inf"), TICK_PHASE)
    return at, phase, getattr(record, "checkout", ""), record.kind


def holds(record: AnyShopperEvent, watermark: float | None) -> bool:
    """Whether stage B must hold ``record`` until its partition's watermark passes it.

    A shopper's records come from every stage-A partition, each at its own pace; the watermark
    (the slowest one's tick) says up to when all of them have arrived. A record beyond it is
    held, so that it lands after the records and the due touches that precede it in stage A's
    time, as the pure core's replay orders them. A record without ``sk`` (from elsewhere than
    stage A) or at or before the watermark is applied at once."""
    key = order_key(record)
    return key is not None and (watermark is None or key > (watermark, TICK_PHASE))


def _set_held(state: ShopperState, queue: list[AnyShopperEvent]) -> ShopperState:
    """``state`` (a copy of the caller's) holding ``queue``, in order."""
    state.q = queue
    state.qd = _held_order(queue[0])[0] if queue else None
    return state


def _holds_only(state: ShopperState) -> bool:
    """A row made only to hold records: no shopper yet."""
    return (
        state.pr is None
        and state.pl is None
        and state.lp is None
        and state.rd is None
        and state.af is None
        and not state.ak
    )


def _without_held(state: ShopperState) -> ShopperState:
    return _set_held(copied(state), [])


def hold(state: ShopperState | None, record: AnyShopperEvent, partition: int) -> ShopperState:
    """``state`` with ``record`` held (a shopper seen for the first time gets a row for it);
    a record it could not apply is refused now, never held."""
    if isinstance(record, CartAbandoned):
        abandonment_of(record)
    st = copied(state) if state is not None else ShopperState(pt=partition)
    _set_held(st, sorted([*st.q, record], key=_held_order))
    st.seq += 1
    return st


def due_of(state: ShopperState) -> float | None:
    """When the shopper next needs the clock: a touch falls due or a held record is reached."""
    nd, qd = state.nd, state.qd
    if nd is None:
        return qd
    return nd if qd is None or nd <= qd else qd


def apply_now(
    state: ShopperState | None,
    shopper: str,
    record: AnyShopperEvent,
    partition: int,
    policy: StorePolicy,
) -> tuple[ShopperState | None, Outputs]:
    """Apply ``record`` (read already) to the shopper, keeping the records held in its row
    as they are."""
    held = state.q if state is not None else []
    base = (
        None if state is None or _holds_only(state) else (_without_held(state) if held else state)
    )
    new, out = apply_record(base, shopper, record, partition, policy)
    if held and new is not None and new.rd is not None:
        # erased: what was held from before the redaction goes with the rest (invariant 6)
        rd = new.rd
        held = [r for r in held if given_at(r) > rd]
    if not held:
        return new, out
    kept = copied(new) if new is not None else ShopperState(pt=partition)
    _set_held(kept, held)
    kept.seq = max(kept.seq, state.seq if state is not None else 0) + 1
    return kept, out


def _reason(exc: Exception) -> str:
    if isinstance(exc, BadEvent):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"[:300]


def release(
    state: ShopperState, shopper: str, watermark: float, partition: int, policy: StorePolicy
) -> tuple[ShopperState | None, list[Outputs]]:
    """Apply the held records the watermark has passed, in order; the rest stay held."""
    queue = state.q
    ready = [r for r in queue if _held_order(r)[:2] <= (watermark, TICK_PHASE)]
    if not ready:
        return state, []
    current: ShopperState | None = _without_held(state)
    outs = []
    for record in ready:
        try:
            current, out = apply_now(current, shopper, record, partition, policy)
        except Exception as exc:  # one record must never stop the shopper's others
            out = Outputs()
            out.rejected.append((as_sent(record), _reason(exc)))
        outs.append(out)
    rest = queue[len(ready) :]
    if current is not None and _holds_only(current):
        current = None  # the row only held records, and none of them made a shopper
    if current is None and not rest:
        return None, outs
    final = copied(current) if current is not None else ShopperState(pt=partition)
    _set_held(final, rest)
    final.seq = max(final.seq, state.seq + 1)
    return final, outs
