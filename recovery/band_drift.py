"""Band drift: do a store's current bands still fit its carts? ("re-check them quarterly")

The history's earliest calendar quarter stands for when the bands were set, its latest for now:
the share of carts per current band in each, and where the advisor (on the latest quarter)
would put each threshold. A threshold is still in place when the advisor's lies within
:data:`TOLERANCE` of it (one price-point step or so); a band's share has drifted when it moved
by :data:`SHIFT` or more (percentage points).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from recovery.advise import Advice, AdviceError, Assumptions, HistoryCart, advise, population
from recovery.bands import band_index

TOLERANCE = Decimal("0.25")
SHIFT = Decimal("0.10")


@dataclass(frozen=True, slots=True)
class BandShare:
    name: str
    min: Decimal
    now: Decimal
    then: Decimal | None

    @property
    def drifted(self) -> bool:
        return self.then is not None and abs(self.now - self.then) >= SHIFT


@dataclass(frozen=True, slots=True)
class Placement:
    name: str  # the band that starts at the threshold
    current: Decimal
    advised: Decimal | None  # None: the advisor proposes no band there

    @property
    def in_place(self) -> bool:
        if self.advised is None:
            return False
        return abs(self.advised - self.current) <= TOLERANCE * self.current


@dataclass(frozen=True, slots=True)
class Drift:
    currency: str
    now_label: str
    then_label: str | None  # None: the history spans one quarter
    now_carts: int
    then_carts: int
    shares: list[BandShare]
    placements: list[Placement]
    advice: Advice

    def lines(self) -> list[str]:
        out = []
        for band in self.shares:
            now = f"{band.now:.0%} of carts now ({self.now_label}) fall in {band.name}"
            if band.then is None:
                out.append(now)
                continue
            mark = "  <- drifted" if band.drifted else ""
            out.append(
                f"{now}; when the bands were set ({self.then_label}) it was {band.then:.0%}{mark}"
            )
        if self.then_label is None:
            out.append("the history spans one quarter: no earlier shares to compare with")
        if self.advice.one_flow:
            flags = "; ".join(self.advice.flags)
            out.append(f"on {self.now_label}'s carts the advisor recommends one flow: {flags}")
            return out
        for place in self.placements:
            where = f"{place.name} starts at {place.current:,} {self.currency}"
            if place.advised is None:
                out.append(f"{where}; the advisor proposes no band there now")
            elif place.in_place:
                out.append(f"{where}; the advisor puts it at {place.advised:,}: still in place")
            else:
                out.append(f"{where}; the advisor now puts it at {place.advised:,}: move it")
        return out


def quarter(moment: datetime) -> str:
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


def _shares(values: Sequence[Decimal], mins: Sequence[Decimal]) -> list[Decimal]:
    counts = [0] * len(mins)
    for value in values:
        counts[band_index(mins, value)] += 1
    total = len(values)
    return [(Decimal(c) / Decimal(total)).quantize(Decimal("0.0001")) for c in counts]


def drift(
    carts: Sequence[HistoryCart],
    bands: Sequence[tuple[str, Decimal]],
    currency: str,
    assumptions: Assumptions | None = None,
) -> Drift:
    """Drift of the current ``bands`` ((name, min) ascending, in ``currency``) over ``carts``."""
    chosen, _ = population(carts, currency)
    if not chosen:
        raise AdviceError(f"no cart in {currency}: the bands are in {currency}")
    by_quarter: dict[str, list[HistoryCart]] = {}
    for cart in chosen:
        by_quarter.setdefault(quarter(cart.time), []).append(cart)
    labels = sorted(by_quarter)
    now_label = labels[-1]
    then_label = labels[0] if len(labels) > 1 else None
    mins = [low for _, low in bands]
    now_values = [c.total for c in by_quarter[now_label]]
    now_shares = _shares(now_values, mins)
    then_values = [c.total for c in by_quarter[then_label]] if then_label else []
    then_shares: list[Decimal | None] = (
        list(_shares(then_values, mins)) if then_values else [None] * len(mins)
    )
    shares = [
        BandShare(name, low, now, then)
        for (name, low), now, then in zip(bands, now_shares, then_shares, strict=True)
    ]
    advice = advise(by_quarter[now_label], assumptions, currency)
    advised = advice.thresholds
    placements = [
        Placement(name, low, advised[i - 1] if i - 1 < len(advised) else None)
        for i, (name, low) in enumerate(bands)
        if i > 0
    ]
    return Drift(
        currency, now_label, then_label, len(now_values), len(then_values), shares, placements,
        advice,
    )  # fmt: skip
