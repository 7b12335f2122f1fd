"""What if the store ran another policy? Traffic through the core, shoppers answering.

:func:`run` drives stages A and B (:class:`recovery.simulate.Simulation`, the core the stream
uses) over a store's abandoned carts in event time, ticking every ``tick_step`` seconds;
every touch the core emits (after caps, consent, quiet hours) is delivered and answered under
the response model (:mod:`recovery.response`): the shopper's order, if any, goes back into
stage A as a ``cart_completed`` at its time, with the code they redeem, so the core ends the
plan and attributes the recovery as it would live. Each abandoned cart becomes one
:class:`recovery.outcomes.CartOutcome` of the ledger the report uses
(:func:`recovery.ledger.outcomes` over the core's own records). :func:`benchmark` reduces
outcomes to seed 000's benchmark table.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from recovery import ledger
from recovery.bands import band_index
from recovery.checkouts import epoch, iso
from recovery.incentives import PRICE_KINDS, cost_of
from recovery.outcomes import UNDECIDED, ZERO, CartOutcome
from recovery.policy import StorePolicy
from recovery.policyset import PolicySet
from recovery.response import ResponseModel, organic_order, redeems, touch_order
from recovery.simulate import DAY, Simulation

CENT = Decimal("0.01")
TICK = 300.0


@dataclass
class _Shoppers:
    """The shoppers' side: pending orders and what each cart's touches offered."""

    model: ResponseModel
    seed: int
    carts: dict[str, dict[str, Any]]
    orders: list[tuple[float, str]] = field(default_factory=list)
    due: dict[str, float] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    offers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def order_at(self, checkout: str, at: float) -> None:
        """The shopper will order at ``at`` unless they already will earlier."""
        if checkout in self.done or self.due.get(checkout, float("inf")) <= at:
            return
        self.due[checkout] = at
        heapq.heappush(self.orders, (at, checkout))

    def touched(self, touch: dict[str, Any], now: float) -> None:
        checkout = str(touch.get("cart"))
        cart = self.carts.get(checkout)
        if cart is None or checkout in self.done or touch.get("template") == "audience_remove":
            return
        incentive = touch.get("incentive") or {}
        if incentive.get("code") and incentive.get("kind") in PRICE_KINDS:
            self.offers.setdefault(checkout, []).append(incentive)
        at = touch_order(self.model, self.seed, checkout, touch, Decimal(cart["total"]), now)
        if at is not None:
            self.order_at(checkout, at)

    def pop_due(self, before: float) -> list[tuple[float, str]]:
        out = []
        while self.orders and self.orders[0][0] < before:
            at, checkout = heapq.heappop(self.orders)
            if self.due.get(checkout) == at and checkout not in self.done:
                self.done.add(checkout)
                out.append((at, checkout))
        return out

    def order(self, checkout: str, at: float, policy: StorePolicy) -> dict[str, Any]:
        """The ``cart_completed`` of the shopper ordering ``checkout`` at ``at``."""
        cart = self.carts[checkout]
        total = Decimal(cart["total"])
        best: tuple[Decimal, str] | None = None
        for offer in self.offers.get(checkout, []):
            expires = offer.get("expires_at")
            if expires is not None and epoch(expires, "expires_at") < at:
                continue
            value = Decimal(offer["value"]) if offer.get("value") is not None else None
            off = cost_of(str(offer["kind"]), value, offer.get("service"), total, policy)
            if best is None or off > best[0]:
                best = (off, str(offer["code"]))
        event: dict[str, Any] = {
            "type": "cart_completed",
            "event_id": f"{checkout}-order",
            "store": cart["store"],
            "checkout": checkout,
            "platform": cart.get("platform", "generic"),
            "occurred_at": iso(at),
            "currency": cart["currency"],
            "total": str(total),
            "order_id": f"order-{checkout}",
            "contact": cart.get("contact"),
        }
        if best is not None and redeems(self.model, self.seed, checkout):
            off = min(best[0], total).quantize(CENT, rounding=ROUND_HALF_EVEN)
            event["total"] = str(total - off)
            event["discounts"] = [{"code": best[1], "amount": str(off)}]
        return event


def with_margin(policies: PolicySet, gross_margin: Decimal) -> PolicySet:
    """``policies`` with the store's true gross margin: a fact of the store, not of a policy,
    so both policies of a comparison count margin (and guard incentives) alike."""

    def one(policy: StorePolicy) -> StorePolicy:
        margin = policy.margin.model_copy(update={"gross_margin": gross_margin})
        return policy.model_copy(update={"margin": margin})

    return PolicySet(
        policies.source,
        one(policies.defaults),
        {store: one(policy) for store, policy in policies.stores.items()},
    )


@dataclass
class Run:
    """What one policy made of the traffic: the outcomes and the core's raw output."""

    outcomes: list[CartOutcome]
    sim: Simulation
    events: int
    # the shoppers' ``cart_completed`` events, in the order they went into the core
    orders: list[dict[str, Any]] = field(default_factory=list)


def run(
    policies: PolicySet,
    traffic: Iterable[tuple[float, dict[str, Any]]],
    model: ResponseModel,
    seed: int,
    secret: Callable[[str], bytes],
    tick_step: float = TICK,
    drain: float = 10 * DAY,
) -> Run:
    """Run ``traffic`` (``(epoch, cart event)`` in time order) through ``policies``."""
    events = list(traffic)
    sim = Simulation(policies, secret)
    carts = {
        str(e["checkout"]): e for _, e in events if e.get("type", "cart_updated") == "cart_updated"
    }
    shoppers = _Shoppers(model, seed, carts)
    planned = 0
    fed = 0
    seen = 0
    fed_orders: list[dict[str, Any]] = []
    now = events[0][0] if events else 0.0
    end = (events[-1][0] if events else now) + drain
    index = 0
    while now <= end:
        now += tick_step
        while True:
            next_event = events[index][0] if index < len(events) else float("inf")
            orders = shoppers.pop_due(min(now, next_event))
            for at, checkout in orders:
                policy = policies.for_store(str(carts[checkout]["store"]))
                order = shoppers.order(checkout, at, policy)
                fed_orders.append(order)
                sim.event(order)
                fed += 1
            if next_event >= now:
                break
            sim.event(events[index][1])
            index += 1
            fed += 1
        sim.tick(now)
        for plan in sim.plans[planned:]:
            # run until every plan's attribution window has closed: no cart is left open
            end = max(end, epoch(plan["window_end"], "window_end"))
            abandoned = epoch(plan["abandoned_at"], "abandoned_at")
            organic = organic_order(model, seed, str(plan["checkout"]), abandoned)
            if organic is not None:
                shoppers.order_at(str(plan["checkout"]), organic)
        planned = len(sim.plans)
        for touch in sim.touches[seen:]:
            shoppers.touched(touch, now)
        seen = len(sim.touches)
    return Run(outcomes(sim, policies, now), sim, fed, fed_orders)


def outcomes(sim: Simulation, policies: PolicySet, as_of: float) -> list[CartOutcome]:
    """The ledger of what the core wrote (:func:`recovery.ledger.outcomes`, as the report
    reads the stream's topics), every touch delivered: the simulated shoppers get what the
    core emits."""
    delivered = [
        {
            "type": "touch_result",
            "store": t["store"],
            "touch_id": t["touch_id"],
            "outcome": "delivered",
        }
        for t in sim.touches
        if t.get("template") != "audience_remove"
    ]
    return ledger.outcomes(
        [*sim.plans, *sim.recoveries, *delivered], policies, datetime.fromtimestamp(as_of, UTC)
    )


@dataclass(frozen=True)
class Benchmark:
    """Seed 000's benchmark table for one set of outcomes (treated carts)."""

    carts: int
    recovered: int
    revenue: Decimal
    margin: Decimal
    discount: Decimal
    spend: Decimal
    holdout_carts: int
    holdout_recovered: int

    @property
    def recovery_rate(self) -> float | None:
        return self.recovered / self.carts if self.carts else None

    @property
    def margin_per_recovered(self) -> Decimal | None:
        return (self.margin / self.recovered).quantize(CENT) if self.recovered else None

    @property
    def margin_per_spend(self) -> Decimal | None:
        return (self.margin / self.spend).quantize(CENT) if self.spend else None


def benchmark(rows: Iterable[CartOutcome]) -> Benchmark:
    carts = recovered = holdout = holdout_recovered = 0
    revenue = margin = discount = spend = ZERO
    for row in rows:
        if row.outcome in UNDECIDED:
            continue
        if row.group == "holdout":
            holdout += 1
            holdout_recovered += row.outcome == "recovered"
            continue
        carts += 1
        spend += row.spend
        if row.outcome == "recovered":
            recovered += 1
            revenue += row.revenue
            margin += row.margin
            discount += row.discount
    return Benchmark(carts, recovered, revenue, margin, discount, spend, holdout, holdout_recovered)


def value_band(bands: list[tuple[str, Decimal]], value: Decimal) -> str:
    """The name of the reference band (``(name, min)`` ascending) holding ``value``."""
    return bands[band_index([low for _, low in bands], value)][0]


def by_band(rows: list[CartOutcome], bands: list[tuple[str, Decimal]]) -> dict[str, Benchmark]:
    """Benchmarks per reference band (the same bands for both policies: by cart value)."""
    grouped: dict[str, list[CartOutcome]] = {name: [] for name, _ in bands}
    for row in rows:
        grouped[value_band(bands, row.value)].append(row)
    return {name: benchmark(group) for name, group in grouped.items()}
