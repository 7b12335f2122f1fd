"""The band advisor: band thresholds from a store's own carts and margin (seed 000).

"Pull your own AOV distribution and gross margin before picking numbers": the advisor reads the
abandoned carts of one currency (all carts when the history holds orders only) and proposes

1. **where carts cluster**: a Gaussian kernel density of log10(cart value) (Silverman's rule of
   thumb for the bandwidth, evaluated on a binned grid). A valley is the lowest point between two
   peaks that is at most :data:`VALLEY_DEPTH` of the lower peak: a real gap, not noise. Valleys
   become the band boundaries (the first the low ceiling, the second the high floor, a third the
   VIP floor). A unimodal spread has none; then the seed's worked example sets the shape: about a
   third of the carts in low (640 of 1,900 under $50) and a tenth in high (210 over $200), i.e.
   the 33rd and 89th percentiles, and the VIP floor at the 98th.
2. **the margin arithmetic**, which can only raise a boundary:
   - the low ceiling: below it a typical coupon plus the mid band's touches (email, SMS) erase
     more than ``erase_share`` of the cart's margin (per cart, from its own margin or cost when
     the history has them, else the store's gross margin);
   - the high floor: from it, the extra recovery that multi-channel spend buys
     (``multichannel_lift`` x the margin left after the coupon) pays ``coverage`` times for the
     extra touches (SMS and ads);
   - the VIP floor: the same with a person's follow-up added, on the margin without a coupon
     (the VIP band offers service, not price).
3. **price points a merchant would write**: each boundary is rounded in log space to the nearest
   of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5 x 10^k (so 50, 200, 600, 1,500).

And the seed's red flags: fewer than ``min_monthly`` abandoned carts a month, or nearly every
cart at one price point (at least :data:`ONE_POINT_SHARE` within +-15% of the median): then the
advice is one flow.

Money stays Decimal; only the density estimate works on floats of log10(value), which are
positions on the axis, never amounts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from recovery.bands import band_index

ZERO = Decimal(0)
CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal("30.4375")
MIN_BAND_SHARE = Decimal("0.01")  # a proposed band holds at least this share of the carts
SHORT_HISTORY = Decimal("0.75")  # months: a history shorter than this is said to be short
VALLEY_DEPTH = 0.6  # a valley at most this share of the lower neighbouring peak's density
GRID = 512  # points of the density grid
ONE_POINT_SHARE = Decimal("0.8")
ONE_POINT_SPREAD = Decimal("0.15")
NICE_MANTISSAS = (
    Decimal(1), Decimal("1.5"), Decimal(2), Decimal("2.5"), Decimal(3), Decimal(4), Decimal(5),
    Decimal(6), Decimal("7.5"),
)  # fmt: skip
# The seed's worked example: ~640 of ~1,900 abandoned carts under $50, ~210 over $200.
LOW_QUANTILE = Decimal("0.33")
HIGH_QUANTILE = Decimal("0.89")
VIP_QUANTILE = Decimal("0.98")
# Per delivered touch when no policy says (the shipped default policy's figures; ads assumed).
DEFAULT_COSTS: Mapping[str, Decimal] = {
    "email": Decimal("0.001"),
    "sms": Decimal("0.0083"),
    "ads": Decimal("0.50"),
    "human": Decimal("3.00"),
}
BAND_NAMES = ("low", "mid", "high", "vip")


class AdviceError(ValueError):
    """A history the advisor cannot read as one store's carts (empty, mixed currencies)."""


@dataclass(frozen=True, slots=True)
class HistoryCart:
    """One cart or order of the history. ``margin``: its gross margin share (0..1), if known."""

    total: Decimal
    currency: str
    time: datetime
    converted: bool
    margin: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What the margin arithmetic assumes; each is a CLI option."""

    margin: Decimal = Decimal("0.5")  # gross margin share when a cart carries none
    coupon: Decimal = Decimal("0.10")  # the typical coupon, a share of the cart
    erase_share: Decimal = Decimal("0.5")  # "most of the margin"
    multichannel_lift: Decimal = Decimal("0.04")  # extra recovery from SMS + ads + a person
    coverage: Decimal = Decimal(2)  # "clearly justifies": the extra margin pays this many times
    costs: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    min_monthly: int = 300  # "under a few hundred abandoned carts a month"
    vip_min_monthly: int = 20  # a VIP band needs this many carts a month above its floor


@dataclass(frozen=True, slots=True)
class ProposedBand:
    name: str
    min: Decimal
    max: Decimal | None  # exclusive; None for the open top band
    carts: int
    share: Decimal
    median: Decimal | None = None  # the band's median cart (None: no cart in it)
    coupon_cost: Decimal | None = None  # the typical coupon on that cart
    margin: Decimal | None = None  # that cart's gross margin (the band's median share)


@dataclass(frozen=True, slots=True)
class Advice:
    currency: str
    carts: int  # the carts the advice is about (abandoned ones, or all when none is)
    abandoned: bool  # whether those are abandoned carts (False: the history holds orders only)
    months: Decimal
    per_month: Decimal
    quantiles: dict[str, Decimal]
    margin: Decimal  # the median margin share of the carts
    valleys: list[Decimal]  # where the density dips between clusters (unrounded, cents)
    economics: dict[str, Decimal]  # low_ceiling, high_floor, vip_floor from the margin arithmetic
    bands: list[ProposedBand]
    reasons: list[str]
    flags: list[str]

    @property
    def one_flow(self) -> bool:
        return len(self.bands) == 1

    @property
    def thresholds(self) -> list[Decimal]:
        return [band.min for band in self.bands[1:]]


def single_currency(carts: Sequence[HistoryCart], currency: str | None = None) -> str:
    """The one currency of ``carts`` (or ``currency``, when it is among them); else an error
    naming each currency with its count, since thresholds in two currencies cannot be mixed."""
    counts: dict[str, int] = {}
    for cart in carts:
        counts[cart.currency] = counts.get(cart.currency, 0) + 1
    if not counts:
        raise AdviceError("the history holds no carts")
    listed = ", ".join(f"{code} ({n} carts)" for code, n in sorted(counts.items()))
    if currency is not None:
        if currency not in counts:
            raise AdviceError(f"no cart in {currency}; the history has {listed}")
        return currency
    if len(counts) > 1:
        raise AdviceError(
            f"the history mixes currencies: {listed}; bands are per currency, "
            "so choose one with --currency"
        )
    return next(iter(counts))


def population(carts: Sequence[HistoryCart], currency: str) -> tuple[list[HistoryCart], bool]:
    """The carts to band: the abandoned ones of ``currency``; all of them if none was abandoned
    (an order history: its values still show the spread)."""
    mine = [cart for cart in carts if cart.currency == currency and cart.total > 0]
    abandoned = [cart for cart in mine if not cart.converted]
    return (abandoned, True) if abandoned else (mine, False)


def quantile(sorted_values: Sequence[Decimal], share: Decimal) -> Decimal:
    """The ``share`` quantile, the nearest-rank value (exact: one of the values)."""
    index = int((share * len(sorted_values)).to_integral_value(rounding=ROUND_HALF_UP))
    return sorted_values[min(max(index - 1, 0), len(sorted_values) - 1)]


def price_point(value: Decimal) -> Decimal:
    """The nearest (in log space) of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5 x 10^k."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    candidates = [
        (mantissa * Decimal(10) ** power).normalize()
        for power in (exponent - 1, exponent, exponent + 1)
        for mantissa in NICE_MANTISSAS
    ]
    target = value.ln()
    best = min(candidates, key=lambda c: abs(c.ln() - target))
    return best.quantize(Decimal(1)) if best >= 1 else best


def density(logs: Sequence[float]) -> tuple[list[float], list[float]]:
    """A Gaussian kernel density of ``logs`` on an even grid: (grid, density).

    The values are binned onto the grid first (linear binning), then smoothed, so the cost is
    the grid's, not the history's. Bandwidth: Silverman's rule, 0.9 min(sd, IQR/1.34) n^-1/5,
    at least 0.01 decades.
    """
    n = len(logs)
    ordered = sorted(logs)
    mean = sum(ordered) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in ordered) / max(n - 1, 1))
    iqr = ordered[(3 * n) // 4] - ordered[n // 4]
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    bandwidth = max(0.9 * spread * n ** (-0.2), 0.01)
    low, high = ordered[0] - 3 * bandwidth, ordered[-1] + 3 * bandwidth
    step = (high - low) / (GRID - 1)
    counts = [0.0] * GRID
    for x in ordered:
        position = (x - low) / step
        left = min(int(position), GRID - 2)
        right_weight = position - left
        counts[left] += 1 - right_weight
        counts[left + 1] += right_weight
    reach = int(4 * bandwidth / step) + 1
    kernel = [math.exp(-0.5 * (k * step / bandwidth) ** 2) for k in range(reach + 1)]
    norm = 1 / (n * bandwidth * math.sqrt(2 * math.pi))
    grid = [low + i * step for i in range(GRID)]
    dens = [0.0] * GRID
    for i, weight in enumerate(counts):
        if weight == 0:
            continue
        for k in range(-reach, reach + 1):
            j = i + k
            if 0 <= j < GRID:
                dens[j] += weight * kernel[abs(k)] * norm
    return grid, dens


def valleys(logs: Sequence[float]) -> list[float]:
    """Positions (log10 value) of the density's valleys between clusters, ascending.

    Peaks below 5% of the highest are ignored (a handful of stray carts is no cluster); between
    two neighbouring peaks the lowest point is a valley when it is at most VALLEY_DEPTH of the
    lower peak. When it is not, the lower peak is merged into the higher one.
    """
    if len(logs) < 2 or max(logs) - min(logs) < 1e-9:
        return []
    grid, dens = density(logs)
    top = max(dens)
    peaks = [
        i
        for i in range(1, GRID - 1)
        if dens[i] >= dens[i - 1] and dens[i] > dens[i + 1] and dens[i] >= 0.05 * top
    ]
    kept: list[int] = []
    found: list[int] = []
    for peak in peaks:
        if not kept:
            kept.append(peak)
            continue
        previous = kept[-1]
        bottom = min(range(previous, peak + 1), key=lambda i: dens[i])
        if dens[bottom] <= VALLEY_DEPTH * min(dens[previous], dens[peak]):
            kept.append(peak)
            found.append(bottom)
        elif dens[peak] > dens[previous]:
            kept[-1] = peak
    return [grid[i] for i in found]


def _costs(costs: Mapping[str, Decimal], *channels: str) -> Decimal:
    return sum((costs.get(channel, ZERO) for channel in channels), ZERO)


def economics(carts: Sequence[HistoryCart], margin: Decimal, a: Assumptions) -> dict[str, Decimal]:
    """The margin arithmetic's boundaries (see the module docstring); a missing key: no bound."""
    result: dict[str, Decimal] = {}
    touches = _costs(a.costs, "email", "sms")
    median = quantile(sorted(cart.total for cart in carts), Decimal("0.5"))
    # Carts in brackets of a tenth of a decade; the ceiling is the top of the highest bracket,
    # at or under the median cart, where the coupon erases most of the margin of most carts: up
    # to its highest cart so erased.
    brackets: dict[int, list[int]] = {}
    tops: dict[int, Decimal] = {}
    for cart in carts:
        if cart.total > median:
            continue
        key = math.floor(float(cart.total.log10()) * 10)
        share = cart.margin if cart.margin is not None else a.margin
        erased = a.coupon * cart.total + touches > a.erase_share * share * cart.total
        tally = brackets.setdefault(key, [0, 0])
        tally[0] += erased
        tally[1] += 1
        if erased:
            tops[key] = max(tops.get(key, cart.total), cart.total)
    for key in sorted(brackets, reverse=True):
        hit, count = brackets[key]
        if 2 * hit > count:
            result["low_ceiling"] = tops[key].quantize(CENT)
            break
    after_coupon = margin - a.coupon
    if a.multichannel_lift > 0 and after_coupon > 0:
        extra = _costs(a.costs, "sms", "ads")
        result["high_floor"] = (a.coverage * extra / (a.multichannel_lift * after_coupon)).quantize(
            CENT
        )
    if a.multichannel_lift > 0 and margin > 0:
        extra = _costs(a.costs, "sms", "ads", "human")
        result["vip_floor"] = (a.coverage * extra / (a.multichannel_lift * margin)).quantize(CENT)
    return result


def _months(carts: Sequence[HistoryCart]) -> Decimal:
    first = min(cart.time for cart in carts)
    last = max(cart.time for cart in carts)
    days = Decimal((last - first).total_seconds()) / Decimal(86400)
    return days / DAYS_PER_MONTH


def _one_price_point(values: Sequence[Decimal]) -> Decimal | None:
    median = quantile(values, Decimal("0.5"))
    near = sum(1 for v in values if abs(v - median) <= ONE_POINT_SPREAD * median)
    return median if near >= ONE_POINT_SHARE * len(values) else None


def _bands(
    carts: Sequence[HistoryCart], thresholds: Sequence[Decimal], a: Assumptions
) -> list[ProposedBand]:
    """Carts per band, and what the typical coupon would cost the band's median cart against
    its margin (seed 000's "10% coupon cost" table)."""
    mins = [ZERO, *thresholds]
    names = BAND_NAMES if len(mins) > 1 else ("all",)
    members: list[list[HistoryCart]] = [[] for _ in mins]
    for cart in carts:
        members[band_index(mins, cart.total)].append(cart)
    bands = []
    for index, low in enumerate(mins):
        high = mins[index + 1] if index + 1 < len(mins) else None
        inside = members[index]
        share = (Decimal(len(inside)) / Decimal(len(carts))).quantize(Decimal("0.0001"))
        if not inside:
            bands.append(ProposedBand(names[index], low, high, 0, share))
            continue
        median = quantile(sorted(c.total for c in inside), Decimal("0.5"))
        margin_share = quantile(
            sorted(c.margin if c.margin is not None else a.margin for c in inside), Decimal("0.5")
        )
        bands.append(
            ProposedBand(
                names[index],
                low,
                high,
                len(inside),
                share,
                median,
                (a.coupon * median).quantize(CENT),
                (margin_share * median).quantize(CENT),
            )
        )
    return bands


def _money(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def advise(
    carts: Sequence[HistoryCart], a: Assumptions | None = None, currency: str | None = None
) -> Advice:
    """Band thresholds for ``carts`` (one currency; see :func:`single_currency`)."""
    a = a or Assumptions()
    code = single_currency(carts, currency)
    chosen, abandoned = population(carts, code)
    if not chosen:
        raise AdviceError(f"no cart in {code} has a positive total")
    values = sorted(cart.total for cart in chosen)
    spanned = _months(chosen)
    months = max(spanned, Decimal(1))
    per_month = (Decimal(len(values)) / months).quantize(Decimal("0.1"))
    shares = sorted(c.margin if c.margin is not None else a.margin for c in chosen)
    margin = quantile(shares, Decimal("0.5"))
    quantiles = {
        f"p{int(q * 100)}": quantile(values, q)
        for q in (Decimal("0.1"), Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("0.9"))
    }
    logs = [float(v.log10()) for v in values]
    dips = [Decimal(10**x).quantize(CENT) for x in valleys(logs)]
    econ = economics(chosen, margin, a)
    reasons: list[str] = []
    if spanned < SHORT_HISTORY:
        # a shorter history is not extrapolated: an hour of carts says little about a month
        reasons.append(
            f"the history spans {spanned * DAYS_PER_MONTH:.0f} days: its carts count as one month's"
        )
    flags: list[str] = []
    kind = "abandoned carts" if abandoned else "orders (the history has no abandoned cart)"
    if per_month < a.min_monthly:
        flags.append(
            f"only {per_month} {kind} a month (under {a.min_monthly}): tiers would not have "
            "enough carts per band to tell what works; run one well-written flow"
        )
    point = _one_price_point(values)
    if point is not None:
        flags.append(
            f"{ONE_POINT_SHARE:.0%} or more of the carts are within {ONE_POINT_SPREAD:.0%} of "
            f"{_money(point, code)}: nothing to tier; run one flow"
        )
    if flags:
        return Advice(
            code, len(values), abandoned, months, per_month, quantiles, margin, dips, econ,
            _bands(chosen, [], a), reasons, flags,
        )  # fmt: skip
    low, high, vip = _structure(values, dips, reasons, code)
    low = _raise(low, econ.get("low_ceiling"), "low ceiling", reasons, code, a)
    high = _raise(high, econ.get("high_floor"), "high floor", reasons, code, a)
    vip = _raise(vip, econ.get("vip_floor"), "VIP floor", reasons, code, a)
    thresholds: list[Decimal] = []
    for name, raw in (("low ceiling", low), ("high floor", high), ("VIP floor", vip)):
        point_value = price_point(raw)
        if thresholds and point_value <= thresholds[-1]:
            reasons.append(f"no separate band at the {name}: it rounds onto the one below")
            continue
        thresholds.append(point_value)
    if len(thresholds) == 3:
        above = sum(1 for v in values if v >= thresholds[2])
        monthly = Decimal(above) / months
        if monthly < a.vip_min_monthly:
            reasons.append(
                f"no VIP band: {monthly:.0f} carts a month at or above "
                f"{_money(thresholds[2], code)} (fewer than {a.vip_min_monthly})"
            )
            thresholds.pop()
    thresholds = _populated(values, thresholds, reasons, code)
    return Advice(
        code, len(values), abandoned, months, per_month, quantiles, margin, dips, econ,
        _bands(chosen, thresholds, a), reasons, flags,
    )  # fmt: skip


def _populated(
    values: Sequence[Decimal], thresholds: Sequence[Decimal], reasons: list[str], code: str
) -> list[Decimal]:
    """``thresholds`` without those whose band would hold under MIN_BAND_SHARE of the carts
    (a band too thin to learn anything from joins the band below it)."""
    kept = list(thresholds)
    index = 0
    while index < len(kept):
        low = kept[index]
        high = kept[index + 1] if index + 1 < len(kept) else None
        count = sum(1 for v in values if v >= low and (high is None or v < high))
        if Decimal(count) < MIN_BAND_SHARE * len(values):
            reasons.append(
                f"no {BAND_NAMES[index + 1]} band from {_money(low, code)}: {count} carts would "
                f"fall in it (under {MIN_BAND_SHARE:.0%})"
            )
            del kept[index]
        else:
            index += 1
    return kept


def _structure(
    values: Sequence[Decimal], dips: Sequence[Decimal], reasons: list[str], code: str
) -> tuple[Decimal, Decimal, Decimal]:
    """The low ceiling, high floor and VIP floor from the clusters, else the seed's shares."""
    low_q = quantile(values, LOW_QUANTILE)
    high_q = quantile(values, HIGH_QUANTILE)
    vip_q = quantile(values, VIP_QUANTILE)
    gaps = ", ".join(_money(d, code) for d in dips)
    if len(dips) >= 2:
        reasons.append(f"the carts form {len(dips) + 1} clusters, with gaps near {gaps}")
        return dips[0], dips[1], dips[2] if len(dips) > 2 else vip_q
    if len(dips) == 1:
        reasons.append(f"the carts form 2 clusters, with a gap near {gaps}")
        if dips[0] <= quantile(values, Decimal("0.5")):
            return dips[0], high_q, vip_q
        return low_q, dips[0], vip_q
    reasons.append(
        "one spread of values without gaps: the low ceiling at the 33rd percentile "
        f"({_money(low_q, code)}), the high floor at the 89th ({_money(high_q, code)}): the "
        f"shares of seed 000's worked example; the VIP floor at the 98th ({_money(vip_q, code)})"
    )
    return low_q, high_q, vip_q


def _raise(
    value: Decimal, bound: Decimal | None, name: str, reasons: list[str], code: str, a: Assumptions
) -> Decimal:
    if bound is None or bound <= value:
        return value
    why = {
        "low ceiling": f"below it a {a.coupon:.0%} coupon and the mid band's touches erase more "
        f"than {a.erase_share:.0%} of the margin",
        "high floor": f"below it {a.multichannel_lift:.0%} more recoveries do not pay "
        f"{a.coverage}x for SMS and ads",
        "VIP floor": f"below it {a.multichannel_lift:.0%} more recoveries do not pay "
        f"{a.coverage}x for SMS, ads and a person",
    }[name]
    reasons.append(f"the {name} raised to {_money(bound, code)}: {why}")
    return bound
