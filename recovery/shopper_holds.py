"""Stage B's holding of records by watermark (pure): a shopper's records come from every
stage-A partition, each at its own pace, and are applied in stage A's time order.

A record stage A stamped (``sk``) beyond the partition's watermark waits in the shopper's row
(``q``, its first time ``qd``) until the watermark passes it; :func:`release` then applies the
ready ones in order through :func:`recovery.shoppers.apply_record`. The agents and the
simulator call these instead of the transitions directly.
"""

from __future__ import annotations

from typing import Any

from recovery.checkouts import TICK_PHASE, BadEvent
from recovery.policy import StorePolicy
from recovery.shopper_profile import State
from recovery.shopper_records import abandonment_of, given_at, known_type, order_key
from recovery.shoppers import Outputs, apply_record

HELD = ("q", "qd")


def _held_order(record: dict[str, Any]) -> tuple[float, int, str, str]:
    at, phase = order_key(record) or (float("-inf"), TICK_PHASE)
    return at, phase, str(record.get("checkout")), str(record.get("type"))


def holds(record: dict[str, Any], watermark: float | None) -> bool:
    """Whether stage B must hold ``record`` until its partition's watermark passes it.

    A shopper's records come from every stage-A partition, each at its own pace; the watermark
    (the slowest one's tick) says up to when all of them have arrived. A record beyond it is
    held, so that it lands after the records and the due touches that precede it in stage A's
    time, as the pure core's replay orders them. A record without ``sk`` (from elsewhere than
    stage A) or at or before the watermark is applied at once."""
    key = order_key(record)
    return key is not None and (watermark is None or key > (watermark, TICK_PHASE))


def _held(queue: list[dict[str, Any]]) -> State:
    """The row's fields for ``queue`` (in order): nothing when it is empty."""
    return {"q": queue, "qd": _held_order(queue[0])[0]} if queue else {}


def _holds_only(state: State) -> bool:
    """A row made only to hold records: no shopper yet."""
    return set(state) <= {"pt", "seq", *HELD}


def hold(state: State | None, record: dict[str, Any], partition: int) -> State:
    """``state`` with ``record`` held (a shopper seen for the first time gets a row for it);
    a record it could not apply is refused now, never held."""
    if known_type(record) == "cart_abandoned":
        abandonment_of(record)
    st: State = dict(state) if state else {"pt": partition, "seq": 0}
    st.update(_held(sorted([*st.get("q", ()), record], key=_held_order)))
    st["seq"] = st.get("seq", 0) + 1
    return st


def due_of(state: State) -> float | None:
    """When the shopper next needs the clock: a touch falls due or a held record is reached."""
    times = [t for t in (state.get("nd"), state.get("qd")) if t is not None]
    return min(times) if times else None


def apply_now(
    state: State | None, shopper: str, record: dict[str, Any], partition: int, policy: StorePolicy
) -> tuple[State | None, Outputs]:
    """Apply ``record`` to the shopper, keeping the records held in its row as they are."""
    held = {name: state[name] for name in HELD if state and name in state}
    base = (
        None
        if not state or _holds_only(state)
        else {k: v for k, v in state.items() if k not in HELD}
    )
    new, out = apply_record(base, shopper, record, partition, policy)
    if held and new and new.get("rd") is not None:
        # erased: what was held from before the redaction goes with the rest (invariant 6)
        held = _held([r for r in held["q"] if given_at(r) > new["rd"]])
    if not held:
        return new, out
    kept: State = dict(new) if new else {"pt": partition}
    kept.update(held)
    kept["seq"] = max(kept.get("seq", 0), (state or {}).get("seq", 0)) + 1
    return kept, out


def _reason(exc: Exception) -> str:
    if isinstance(exc, BadEvent):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"[:300]


def release(
    state: State, shopper: str, watermark: float, partition: int, policy: StorePolicy
) -> tuple[State | None, list[Outputs]]:
    """Apply the held records the watermark has passed, in order; the rest stay held."""
    queue = state.get("q") or []
    ready = [r for r in queue if _held_order(r)[:2] <= (watermark, TICK_PHASE)]
    if not ready:
        return state, []
    current: State | None = {k: v for k, v in state.items() if k not in HELD}
    outs = []
    for record in ready:
        try:
            current, out = apply_now(current, shopper, record, partition, policy)
        except Exception as exc:  # one record must never stop the shopper's others
            out = Outputs()
            out.rejected.append((record, _reason(exc)))
        outs.append(out)
    rest = queue[len(ready) :]
    if current is not None and _holds_only(current):
        current = None  # the row only held records, and none of them made a shopper
    if current is None and not rest:
        return None, outs
    final: State = dict(current) if current else {"pt": partition}
    final.update(_held(rest))
    final["seq"] = max(final.get("seq", 0), state.get("seq", 0) + 1)
    return final, outs
