"""The merchant's report: per band, does recovery pay, and how sure is that?

A pure function of the ledger's :class:`~recovery.outcomes.CartOutcome` rows. Only closed
outcomes count (an ``open`` cart's window has not passed: it is counted aside). One report
holds one currency: amounts in different currencies are never added.

Per band, both groups (treated: got the touches; holdout: kept as a control):

- recovery rate: recovered carts / closed carts, with its Wilson interval;
- lift: treated rate minus holdout rate, with Newcombe's hybrid score interval;
- incremental margin per abandoned cart: the mean of (net margin - channel costs) per treated
  cart minus the same per holdout cart, with a seeded percentile bootstrap interval. Net margin
  already has the redeemed discount taken off, so this is what recovery adds per cart after
  everything it cost;
- spend: discounts redeemed plus channel costs of the treated carts;
- recovered margin per dollar of spend: the treated carts' net margin / spend (total), and the
  margin they brought beyond what the holdout rate says they would have anyway / spend
  (incremental).

The total row weighs each band by its share of the carts (a stratified estimate): bands keep
different holdout shares, and pooling them would compare unlike carts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from recovery.outcomes import UNDECIDED, ZERO, CartOutcome
from recovery.stats import (
    Interval,
    holdout_needed,
    newcombe_difference,
    stratified_bootstrap,
    wilson,
)

TOTAL = "total"
MIN_CARTS = 20
"""Below this many carts in a group, no interval is trusted enough for a verdict."""
SMALLEST_LIFT = 0.02
"""The lift the holdout guide aims at when none (or a negligible one) has been seen yet."""
CENT = Decimal("0.01")

Verdict = Literal["pays", "costs", "too_few", "unclear"]


class ReportError(ValueError):
    """The outcomes cannot make one report (e.g. several currencies)."""


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One group's closed carts in a band, and their money."""

    carts: int
    recovered: int
    rate: Interval
    revenue: Decimal
    margin: Decimal
    discount: Decimal
    channel_costs: Decimal

    @property
    def spend(self) -> Decimal:
        return self.discount + self.channel_costs


@dataclass(frozen=True, slots=True)
class MoneyInterval:
    """An amount with its 95% interval (bounds to the cent: they are estimates)."""

    estimate: Decimal
    low: Decimal
    high: Decimal


@dataclass(frozen=True, slots=True)
class BandReport:
    band: str
    treated: GroupFigures
    holdout: GroupFigures
    lift: Interval | None
    incremental_margin: MoneyInterval | None
    margin_per_spend: Decimal | None
    incremental_margin_per_spend: Decimal | None
    holdout_needed: int | None
    verdict: Verdict
    verdict_text: str
    rates: tuple[float, float] | None = None
    """(treated, holdout) recovery rates as the lift compares them: a band's own; in the total,
    each band's rate weighed by its share of the carts, so that lift = treated - holdout.
    None when no band has both groups."""


@dataclass(frozen=True, slots=True)
class Report:
    scope: str
    currency: str
    bands: list[BandReport]
    total: BandReport
    open_carts: int
    passed_over: int = 0  # carts whose shopper's kept plan counts for them (not in rates)


def build_reports(
    outcomes: Iterable[CartOutcome],
    *,
    store: str | None = None,
    band_order: Sequence[str] = (),
    seed: int = 0,
    resamples: int = 2000,
) -> list[Report]:
    """One report per currency of ``store``'s outcomes (of every store when None)."""
    chosen = [o for o in outcomes if store is None or o.store == store]
    currencies = sorted({o.currency for o in chosen})
    scope = f"store {store}" if store is not None else "all stores"
    return [
        build_report(
            [o for o in chosen if o.currency == currency],
            scope=scope,
            band_order=band_order,
            seed=seed,
            resamples=resamples,
        )
        for currency in currencies
    ]


def build_report(
    outcomes: Sequence[CartOutcome],
    *,
    scope: str,
    band_order: Sequence[str] = (),
    seed: int = 0,
    resamples: int = 2000,
) -> Report:
    """The report of ``outcomes``, all in one currency; bands in ``band_order``, then others
    by their smallest cart value."""
    currencies = {o.currency for o in outcomes}
    if len(currencies) > 1:
        raise ReportError(
            f"one report holds one currency, these outcomes have {', '.join(sorted(currencies))}"
        )
    currency = currencies.pop() if currencies else ""
    closed = [o for o in outcomes if o.outcome not in UNDECIDED]
    open_carts = sum(1 for o in outcomes if o.outcome == "open")
    passed_over = sum(1 for o in outcomes if o.outcome == "passed_over")
    by_band: dict[str, list[CartOutcome]] = {}
    for outcome in closed:
        by_band.setdefault(outcome.band, []).append(outcome)
    names = _ordered(by_band, band_order)
    bands = [
        _band(name, by_band[name], [by_band[name]], currency, seed + 7919 * i, resamples)
        for i, name in enumerate(names, start=1)
    ]
    strata = [by_band[name] for name in names]
    total = _band(TOTAL, closed, strata, currency, seed, resamples)
    return Report(scope, currency, bands, total, open_carts, passed_over)


def _band(
    name: str,
    rows: Sequence[CartOutcome],
    strata: Sequence[Sequence[CartOutcome]],
    currency: str,
    seed: int,
    resamples: int,
) -> BandReport:
    treated = [o for o in rows if o.group == "treated"]
    holdout = [o for o in rows if o.group == "holdout"]
    t, h = _figures(treated), _figures(holdout)
    comparable = [s for s in strata if _groups(s)[0] and _groups(s)[1]]
    lift: Interval | None = None
    margin: MoneyInterval | None = None
    if comparable:
        if len(strata) == 1:
            lift = newcombe_difference(t.recovered, t.carts, h.recovered, h.carts)
        else:
            lift = stratified_bootstrap(
                [_split(s, _recovered) for s in comparable], seed=seed + 1, resamples=resamples
            )
        spread = stratified_bootstrap(
            [_split(s, _net) for s in comparable], seed=seed, resamples=resamples
        )
        margin = MoneyInterval(
            _stratified_mean([_split_exact(s) for s in comparable]),
            _cents(spread.low),
            _cents(spread.high),
        )
    per_spend = t.margin / t.spend if t.spend > 0 else None
    incremental_per_spend = _incremental_per_spend(comparable)
    needed = _needed(t, h, lift)
    verdict, text = _verdict(h, t, margin, needed, lift, currency)
    return BandReport(
        name,
        t,
        h,
        lift,
        margin,
        per_spend,
        incremental_per_spend,
        needed,
        verdict,
        text,
        _standardised_rates(comparable),
    )


def _standardised_rates(strata: Sequence[Sequence[CartOutcome]]) -> tuple[float, float] | None:
    carts = sum(len(rows) for rows in strata)
    if not carts:
        return None
    treated = holdout = 0.0
    for rows in strata:
        t, h = (_figures(group) for group in _groups(rows))
        treated += len(rows) / carts * t.rate.estimate
        holdout += len(rows) / carts * h.rate.estimate
    return treated, holdout


def _incremental_per_spend(strata: Sequence[Sequence[CartOutcome]]) -> Decimal | None:
    """(treated net margin - what those carts would have brought at their band's holdout
    margin per cart) / treated spend, over the bands that have both groups."""
    margin = expected = spend = ZERO
    for rows in strata:
        t, h = (_figures(group) for group in _groups(rows))
        margin += t.margin
        expected += t.carts * h.margin / h.carts
        spend += t.spend
    return (margin - expected) / spend if spend > 0 else None


def _figures(rows: Sequence[CartOutcome]) -> GroupFigures:
    recovered = sum(1 for o in rows if o.outcome == "recovered")
    return GroupFigures(
        carts=len(rows),
        recovered=recovered,
        rate=wilson(recovered, len(rows)),
        revenue=sum((o.revenue for o in rows), ZERO),
        margin=sum((o.margin for o in rows), ZERO),
        discount=sum((o.discount for o in rows), ZERO),
        channel_costs=sum((sum(o.costs.values(), ZERO) for o in rows), ZERO),
    )


def _net(outcome: CartOutcome) -> Decimal:
    """What the cart brought after the channels' cost (the discount is already off margin)."""
    return outcome.margin - sum(outcome.costs.values(), ZERO)


def _recovered(outcome: CartOutcome) -> Decimal:
    return Decimal(1) if outcome.outcome == "recovered" else ZERO


def _groups(rows: Sequence[CartOutcome]) -> tuple[list[CartOutcome], list[CartOutcome]]:
    return [o for o in rows if o.group == "treated"], [o for o in rows if o.group == "holdout"]


def _split(
    rows: Sequence[CartOutcome], get: Callable[[CartOutcome], Decimal]
) -> tuple[list[Decimal], list[Decimal]]:
    treated, holdout = _groups(rows)
    return [get(o) for o in treated], [get(o) for o in holdout]


def _split_exact(rows: Sequence[CartOutcome]) -> tuple[int, Decimal]:
    """(carts, exact difference of the groups' mean net margin) of one stratum."""
    treated, holdout = _groups(rows)
    t = sum((_net(o) for o in treated), ZERO) / len(treated)
    h = sum((_net(o) for o in holdout), ZERO) / len(holdout)
    return len(rows), t - h


def _stratified_mean(parts: Sequence[tuple[int, Decimal]]) -> Decimal:
    carts = sum(n for n, _ in parts)
    return _cents_exact(sum((n * d for n, d in parts), ZERO) / carts)


def _needed(t: GroupFigures, h: GroupFigures, lift: Interval | None) -> int | None:
    if t.carts == 0 or h.carts == 0:
        return None
    seen = lift.estimate if lift is not None else 0.0
    target = seen if seen >= SMALLEST_LIFT / 4 else SMALLEST_LIFT
    share = t.carts / (t.carts + h.carts)
    needed = holdout_needed(h.rate.estimate, target, treated_share=share)
    # below MIN_CARTS a group is too small to tell whatever the power guide says
    return None if needed is None else max(needed, MIN_CARTS)


def _verdict(
    h: GroupFigures,
    t: GroupFigures,
    margin: MoneyInterval | None,
    needed: int | None,
    lift: Interval | None,
    currency: str,
) -> tuple[Verdict, str]:
    few = margin is None or h.carts < MIN_CARTS or t.carts < MIN_CARTS
    # The bootstrap's percentile interval is too narrow when a small holdout recovers a cart
    # or two: "pays" claims the touches brought orders the holdout did not get, so it also
    # needs the recovery lift to be clear (Newcombe holds at small counts) or the holdout to
    # have the carts the power guide asks for. "Costs" needs no lift: discounts given away
    # for the same recovery rate are spend seen on the treated carts themselves.
    enough = needed is not None and h.carts >= needed
    settled = enough or (lift is not None and lift.low > 0)
    if not few and margin is not None:
        span = f"95% CI {_signed(margin.low)}..{_signed(margin.high)}"
        sign = "+" if margin.estimate >= 0 else ""
        amount = f"{sign}{money(margin.estimate, currency)} margin per cart"
        if margin.low > 0 and settled:
            return "pays", f"pays: {amount}, {span}"
        if margin.high < 0:
            return "costs", f"costs more than it brings: {amount}, {span}"
        if enough:
            return "unclear", f"no clear difference: {amount}, {span}"
    need = f", need ~{needed}" if needed is not None else ", and treated carts to compare"
    if h.carts == 0:
        need = ": no holdout carts, nothing to compare with (is the band's holdout 0?)"
        return "too_few", f"too few carts to tell{need}"
    target = ""
    if needed is not None and lift is not None:
        aim = lift.estimate if lift.estimate >= SMALLEST_LIFT / 4 else SMALLEST_LIFT
        target = f" to see a {aim * 100:.1f}-point lift"
    return "too_few", f"too few carts to tell: {h.carts} holdout carts{need}{target}"


def _ordered(by_band: dict[str, list[CartOutcome]], order: Sequence[str]) -> list[str]:
    known = [name for name in order if name in by_band]
    rest = sorted(
        (name for name in by_band if name not in known),
        key=lambda name: (min(o.value for o in by_band[name]), name),
    )
    return known + rest


def _cents(value: float) -> Decimal:
    return _cents_exact(Decimal(repr(value)))


def _cents_exact(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "NZD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _symbol(currency: str) -> str:
    return SYMBOLS.get(currency, "")


def _signed(amount: Decimal) -> str:
    sign = "-" if amount < 0 else "+"
    return f"{sign}{abs(amount):,.2f}"


def money(amount: Decimal, currency: str) -> str:
    """``$1,234.50`` for a currency with a known symbol, else ``1,234.50 SEK``."""
    symbol = _symbol(currency)
    sign = "-" if amount < 0 else ""
    if symbol:
        return f"{sign}{symbol}{abs(amount):,.2f}"
    return f"{sign}{abs(amount):,.2f} {currency}".rstrip()
