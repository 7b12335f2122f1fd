"""The ledger: what became of every abandoned cart, folded from what the stream wrote (pure).

Input: the records of the ``recoveries`` topic (``plan``: one per cart given a plan;
``recovery``: an order stage B attributed to a plan) and of ``touch-results`` (what a sender
did with a touch), in any order, each possibly more than once (the topics are at-least-once).
Output: one :class:`~recovery.outcomes.CartOutcome` per abandoned cart (store, checkout,
cycle), in the order of the carts' abandonment.

The rules, the same for the treated and the holdout group:

- a cart's window runs from its abandonment to the plan record's ``window_end`` (the band's
  last scheduled touch plus the attribution window, see ``recovery.plan_records.window_end``);
- a cart passed over for the shopper's plan that stayed in force (its record names that plan
  in ``passed_over``) is ``passed_over``: orders and touches count in the kept plan;
- the cart's first attributed order (by time, then order id) at or before ``as_of`` decides:
  inside the window ``recovered``, after it ``ordered_later``; without one, ``not_recovered``
  once ``as_of`` has passed the window, else ``open``;
- revenue, net margin and the discount redeemed are the recovering order's (zero otherwise);
- channel costs: each distinct touch of the plan that a sender reported ``delivered``, at the
  store's ``delivery.costs`` for its channel (the policy's figure: what the touch costs, or
  would cost once a real provider replaces the outbox);
- last channel and step: the highest step the order's plan had sent by the order among those
  delivered (or, with no touch result known for the plan, among those sent).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from recovery.outcomes import GROUPS, ZERO, CartOutcome, Group, Outcome
from recovery.policyset import PolicySet

CartKey = tuple[str, str, int]  # store, checkout, cycle
K = TypeVar("K", bound=Hashable)


class LedgerError(ValueError):
    """A record the ledger cannot read; the message names the record and the field."""


@dataclass(frozen=True)
class _Plan:
    key: CartKey
    shopper: str
    band: str
    segment: str
    group: Group
    currency: str
    value: Decimal
    abandoned_at: datetime
    window_end: datetime
    touches: Mapping[str, tuple[str, int]]  # touch id -> (channel, step)
    passed_over: bool = False


@dataclass(frozen=True)
class _Order:
    store: str
    checkout: str
    cycle: int | None
    order_id: str
    at: datetime
    revenue: Decimal
    margin: Decimal
    discount: Decimal
    sent: tuple[int, ...]


def _where(record: Mapping[str, Any]) -> str:
    return f"{record.get('type')} record of {record.get('store')}/{record.get('checkout')}"


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise LedgerError(f"{_where(record)}: {name}: expected a string, got {value!r}")
    return value


def _money(record: Mapping[str, Any], name: str) -> Decimal:
    value = record.get(name)
    try:
        amount = Decimal(str(value)) if value is not None else ZERO
    except InvalidOperation:
        raise LedgerError(f"{_where(record)}: {name}: not an amount: {value!r}") from None
    if not amount.is_finite():
        raise LedgerError(f"{_where(record)}: {name}: not an amount: {value!r}")
    return amount


def _time(record: Mapping[str, Any], name: str) -> datetime:
    value = _text(record, name)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LedgerError(f"{_where(record)}: {name}: not an ISO 8601 time: {value!r}") from None
    if at.tzinfo is None:
        raise LedgerError(f"{_where(record)}: {name}: a time needs its UTC offset: {value!r}")
    return at


def _int(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerError(f"{_where(record)}: {name}: expected an integer, got {value!r}")
    return value


def _plan(record: Mapping[str, Any]) -> _Plan:
    group = record.get("group")
    if group not in GROUPS:
        raise LedgerError(f"{_where(record)}: group: expected treated or holdout, got {group!r}")
    touches: dict[str, tuple[str, int]] = {}
    listed = record.get("touches") or []
    if not isinstance(listed, list):
        raise LedgerError(f"{_where(record)}: touches: expected a list")
    for touch in listed:
        if not isinstance(touch, dict):
            raise LedgerError(f"{_where(record)}: touches: expected objects")
        touches[_text(touch, "touch_id")] = (_text(touch, "channel"), _int(touch, "step"))
    return _Plan(
        key=(_text(record, "store"), _text(record, "checkout"), _int(record, "cycle")),
        shopper=str(record.get("shopper") or ""),
        band=str(record.get("band") or ""),
        segment=str(record.get("segment") or ""),
        group=cast(Group, group),
        currency=str(record.get("currency") or ""),
        value=_money(record, "value"),
        abandoned_at=_time(record, "abandoned_at"),
        window_end=_time(record, "window_end"),
        touches=touches,
        passed_over=record.get("passed_over") is not None,
    )


def _order(record: Mapping[str, Any]) -> _Order:
    cycle = record.get("cycle")
    sent = record.get("touches_sent") or []
    if not isinstance(sent, list) or not all(isinstance(s, int) for s in sent):
        raise LedgerError(f"{_where(record)}: touches_sent: expected a list of steps")
    return _Order(
        store=_text(record, "store"),
        checkout=_text(record, "checkout"),
        cycle=_int(record, "cycle") if cycle is not None else None,
        order_id=str(record.get("order_id")),
        at=_time(record, "occurred_at"),
        revenue=_money(record, "revenue"),
        margin=_money(record, "margin"),
        discount=_money(record, "discount"),
        sent=tuple(sent),
    )


@dataclass
class _Records:
    plans: dict[CartKey, _Plan] = field(default_factory=dict)
    orders: dict[tuple[str, str], _Order] = field(default_factory=dict)  # (store, order id)
    delivered: set[tuple[str, str]] = field(default_factory=set)  # (store, touch id)
    reported: set[tuple[str, str]] = field(default_factory=set)  # any touch result


def _read(records: Iterable[Mapping[str, Any]]) -> _Records:
    seen = _Records()
    for record in records:
        kind = record.get("type")
        if kind == "plan":
            plan = _plan(record)
            seen.plans.setdefault(plan.key, plan)
        elif kind == "recovery":
            order = _order(record)
            seen.orders.setdefault((order.store, order.order_id), order)
        elif kind == "touch_result":
            touch = (_text(record, "store"), _text(record, "touch_id"))
            seen.reported.add(touch)
            if record.get("outcome") == "delivered":
                seen.delivered.add(touch)
    return seen


def _orders_by_cart(seen: _Records) -> dict[CartKey, list[_Order]]:
    """Each order under its plan's cart; a record without a cycle (written before records
    carried one) goes to the latest cycle of its checkout abandoned before the order."""
    cycles: dict[tuple[str, str], list[_Plan]] = {}
    for plan in seen.plans.values():
        cycles.setdefault(plan.key[:2], []).append(plan)
    found: dict[CartKey, list[_Order]] = {}
    for order in seen.orders.values():
        if order.cycle is not None:
            key: CartKey | None = (order.store, order.checkout, order.cycle)
        else:
            plans = cycles.get((order.store, order.checkout), ())
            earlier = [p for p in plans if p.abandoned_at <= order.at]
            key = max(earlier, key=lambda p: p.key[2]).key if earlier else None
        if key is not None and key in seen.plans:
            found.setdefault(key, []).append(order)
    return found


def outcomes(
    records: Iterable[Mapping[str, Any]], policies: PolicySet, as_of: datetime
) -> list[CartOutcome]:
    """One outcome per cart given a plan and abandoned by ``as_of`` (see the module doc).

    Raises :class:`LedgerError` naming the first record it cannot read."""
    seen = _read(records)
    by_cart = _orders_by_cart(seen)
    rows = []
    for key in sorted(seen.plans, key=lambda k: (seen.plans[k].abandoned_at, k)):
        plan = seen.plans[key]
        if plan.abandoned_at > as_of:
            continue  # not abandoned yet as of then
        orders = sorted(
            (o for o in by_cart.get(key, ()) if o.at <= as_of), key=lambda o: (o.at, o.order_id)
        )
        rows.append(_outcome(plan, orders[0] if orders else None, seen, policies, as_of))
    return rows


def _outcome(
    plan: _Plan, order: _Order | None, seen: _Records, policies: PolicySet, as_of: datetime
) -> CartOutcome:
    store = plan.key[0]
    if plan.passed_over:
        return _row(plan, {}, "passed_over")
    prices = policies.for_store(store).delivery.costs
    costs: dict[str, Decimal] = {}
    delivered_steps: dict[int, str] = {}
    for touch_id, (channel, step) in plan.touches.items():
        if (store, touch_id) in seen.delivered:
            delivered_steps[step] = channel
            costs[channel] = costs.get(channel, ZERO) + prices.get(channel, ZERO)
    if order is None:
        return _row(plan, costs, "not_recovered" if as_of >= plan.window_end else "open")
    if order.at > plan.window_end:
        return _row(plan, costs, "ordered_later")
    reported = any((store, t) in seen.reported for t in plan.touches)
    channels = {step: channel for channel, step in plan.touches.values()}
    steps = [s for s in order.sent if s in (delivered_steps if reported else channels)]
    last = max(steps, default=None)
    return _row(
        plan, costs, "recovered", order, channels.get(last) if last is not None else None, last
    )


def _row(
    plan: _Plan,
    costs: dict[str, Decimal],
    outcome: Outcome,
    order: _Order | None = None,
    last_channel: str | None = None,
    last_step: int | None = None,
) -> CartOutcome:
    store, checkout, cycle = plan.key
    return CartOutcome(
        store=store, checkout=checkout, cycle=cycle, band=plan.band, segment=plan.segment,
        group=plan.group, currency=plan.currency, value=plan.value,
        abandoned_at=plan.abandoned_at, outcome=outcome,
        revenue=order.revenue if order else ZERO, margin=order.margin if order else ZERO,
        discount=order.discount if order else ZERO, costs=costs,
        last_channel=last_channel, last_step=last_step,
    )  # fmt: skip


# --- summaries ---------------------------------------------------------------------------


@dataclass
class Summary:
    """Totals over a set of outcomes: carts by outcome, and their money."""

    carts: int = 0
    recovered: int = 0
    ordered_later: int = 0
    not_recovered: int = 0
    open: int = 0
    passed_over: int = 0
    revenue: Decimal = ZERO
    margin: Decimal = ZERO
    discount: Decimal = ZERO
    costs: dict[str, Decimal] = field(default_factory=dict)

    def add(self, row: CartOutcome) -> None:
        self.carts += 1
        if row.outcome == "recovered":
            self.recovered += 1
        elif row.outcome == "ordered_later":
            self.ordered_later += 1
        elif row.outcome == "not_recovered":
            self.not_recovered += 1
        elif row.outcome == "passed_over":
            self.passed_over += 1
        else:
            self.open += 1
        self.revenue += row.revenue
        self.margin += row.margin
        self.discount += row.discount
        for channel, cost in row.costs.items():
            self.costs[channel] = self.costs.get(channel, ZERO) + cost

    @property
    def decided(self) -> int:
        """Carts whose recovery is decided (the window passed or an order came): not open,
        not passed over."""
        return self.carts - self.open - self.passed_over

    @property
    def spend(self) -> Decimal:
        return self.discount + sum(self.costs.values(), ZERO)


def summarize(rows: Iterable[CartOutcome], key: Callable[[CartOutcome], K]) -> dict[K, Summary]:
    """Outcomes totalled by ``key`` (e.g. ``lambda o: (o.band, o.group)``), keys sorted."""
    out: dict[K, Summary] = {}
    for row in rows:
        out.setdefault(key(row), Summary()).add(row)
    return dict(sorted(out.items(), key=lambda item: repr(item[0])))


def by_band(rows: Iterable[CartOutcome]) -> dict[tuple[str, str], Summary]:
    """Per (band, group)."""
    return summarize(rows, lambda o: (o.band, o.group))


def by_segment(rows: Iterable[CartOutcome]) -> dict[tuple[str, str], Summary]:
    """Per (segment, group)."""
    return summarize(rows, lambda o: (o.segment, o.group))


@dataclass
class ChannelSummary:
    """One channel: what its delivered touches cost, and the recoveries it touched last."""

    cost: Decimal = ZERO
    recovered_last: int = 0
    revenue: Decimal = ZERO
    margin: Decimal = ZERO


def by_channel(rows: Iterable[CartOutcome]) -> dict[str, ChannelSummary]:
    out: dict[str, ChannelSummary] = {}
    for row in rows:
        for channel, cost in row.costs.items():
            out.setdefault(channel, ChannelSummary()).cost += cost
        if row.outcome == "recovered" and row.last_channel is not None:
            summary = out.setdefault(row.last_channel, ChannelSummary())
            summary.recovered_last += 1
            summary.revenue += row.revenue
            summary.margin += row.margin
    return dict(sorted(out.items()))


# --- reconciliation ----------------------------------------------------------------------


def reconcile(
    records: Iterable[Mapping[str, Any]], rows: Iterable[CartOutcome], as_of: datetime
) -> list[str]:
    """What does not add up between the records and the ledger made of them as of ``as_of``
    (empty: all does). Every cart given a plan and abandoned by then is in the ledger exactly
    once and nothing else is; per band, the recovered carts' revenue less discounts redeemed,
    and their net margin, are what their orders reported (the first order of each cart,
    inside its window)."""
    seen = _read(records)
    rows = list(rows)
    problems = []
    counted: dict[CartKey, int] = {}
    for row in rows:
        key = (row.store, row.checkout, row.cycle)
        counted[key] = counted.get(key, 0) + 1
    planned = {k for k, plan in seen.plans.items() if plan.abandoned_at <= as_of}
    for key in sorted(planned | set(counted)):
        if counted.get(key, 0) != 1:
            problems.append(f"cart {key}: {counted.get(key, 0)} ledger rows, expected 1")
    first: dict[CartKey, _Order] = {}
    for key, orders in _orders_by_cart(seen).items():
        known = [o for o in orders if o.at <= as_of]
        earliest = min(known, key=lambda o: (o.at, o.order_id), default=None)
        if earliest is not None and earliest.at <= seen.plans[key].window_end:
            first[key] = earliest
    reported: dict[str, list[Decimal]] = {}
    for key, order in first.items():
        sums = reported.setdefault(seen.plans[key].band, [ZERO, ZERO])
        sums[0] += order.revenue - order.discount
        sums[1] += order.margin
    ledger: dict[str, list[Decimal]] = {}
    for row in rows:
        if row.outcome == "recovered":
            sums = ledger.setdefault(row.band, [ZERO, ZERO])
            sums[0] += row.revenue - row.discount
            sums[1] += row.margin
    for band in sorted(set(reported) | set(ledger)):
        got, want = ledger.get(band, [ZERO, ZERO]), reported.get(band, [ZERO, ZERO])
        if got[0] != want[0]:
            problems.append(f"band {band}: revenue - discounts {got[0]}, reported {want[0]}")
        if got[1] != want[1]:
            problems.append(f"band {band}: net margin {got[1]}, reported {want[1]}")
    return problems
