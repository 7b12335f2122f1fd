"""Intervals for the report: how sure can a merchant be that recovery pays?

Proportions and their intervals are statistics, computed in floats; money stays ``Decimal``
until it is resampled (a bootstrap mean is an estimate, not an amount anyone is paid) and is
turned back into ``Decimal`` for the report. Everything here is pure and deterministic: the
bootstrap draws from a :class:`random.Random` seeded by the caller.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)
"""The two-sided 95% normal quantile, 1.95996..."""


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its confidence interval, ``low <= estimate <= high``."""

    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """The Wilson score interval of a proportion (Wilson 1927), never outside [0, 1].

    It keeps close to its nominal coverage at small counts and at 0 or n successes, where the
    textbook p +/- z*se interval collapses to a point.
    """
    _check_counts(successes, trials)
    if trials == 0:
        return Interval(0.0, 0.0, 1.0)
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At 0 (or n) successes the bound is exactly 0 (or 1); rounding would leave a speck.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(p, low, high)


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """The difference ``x1/n1 - x2/n2`` with Newcombe's hybrid score interval.

    Method 10 of Newcombe (1998), "Interval estimation for the difference between independent
    proportions: comparison of eleven methods", Statistics in Medicine 17:873-890: with each
    proportion's Wilson interval (l1, u1) and (l2, u2) and d = p1 - p2,
    lower = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), upper = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    """
    first, second = wilson(x1, n1, z), wilson(x2, n2, z)
    p1, p2 = first.estimate, second.estimate
    d = p1 - p2
    low = d - math.hypot(p1 - first.low, second.high - p2)
    high = d + math.hypot(first.high - p1, p2 - second.low)
    return Interval(d, max(-1.0, low), min(1.0, high))


def bootstrap_mean_difference(
    treated: Sequence[Decimal],
    holdout: Sequence[Decimal],
    *,
    seed: int,
    resamples: int = 2000,
    level: float = 0.95,
) -> Interval | None:
    """Mean of ``treated`` minus mean of ``holdout``, with a percentile bootstrap interval.

    Each resample draws both groups again with replacement, at their own sizes (the groups
    are independent); the interval is the (1-level)/2 and (1+level)/2 percentiles of the
    resampled differences. ``None`` when a group is empty: there is nothing to compare.
    Same inputs, same seed: same interval.
    """
    if not treated or not holdout:
        return None
    return stratified_bootstrap([(treated, holdout)], seed=seed, resamples=resamples, level=level)


def stratified_bootstrap(
    strata: Sequence[tuple[Sequence[Decimal], Sequence[Decimal]]],
    *,
    seed: int,
    resamples: int = 2000,
    level: float = 0.95,
) -> Interval:
    """The difference of means (treated - holdout) within each stratum, averaged with weights
    proportional to the stratum's size, with a percentile bootstrap interval that resamples
    each group of each stratum on its own. Every group must hold at least one value.

    Strata (value bands) keep different holdout shares: comparing pooled groups would weigh
    the bands differently in each group, so the difference is taken within each band first.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be positive, not {resamples}")
    if not strata or any(not t or not h for t, h in strata):
        raise ValueError("every stratum needs values in both groups")
    groups = [([float(v) for v in t], [float(v) for v in h]) for t, h in strata]
    sizes = [len(t) + len(h) for t, h in groups]
    weights = [size / sum(sizes) for size in sizes]
    rng = random.Random(seed)

    def difference(draw: bool) -> float:
        total = 0.0
        for weight, (t, h) in zip(weights, groups, strict=True):
            a = rng.choices(t, k=len(t)) if draw else t
            b = rng.choices(h, k=len(h)) if draw else h
            total += weight * (math.fsum(a) / len(a) - math.fsum(b) / len(b))
        return total

    diffs = sorted(difference(True) for _ in range(resamples))
    tail = (1 - level) / 2
    return Interval(difference(False), _percentile(diffs, tail), _percentile(diffs, 1 - tail))


def holdout_needed(
    base_rate: float,
    lift: float,
    *,
    treated_share: float,
    z_alpha: float = Z95,
    power: float = 0.8,
) -> int | None:
    """Holdout carts needed to tell ``lift`` (absolute, in rate) from none, as a rough guide.

    A normal approximation of the two-sided two-proportion z test at 5% (by default) and
    ``power``: n_h = (z_a + z_b)^2 * (p1(1-p1)/k + p0(1-p0)) / lift^2, where the treated group
    is k times the holdout (k = treated_share / (1 - treated_share)). It is only an
    approximation; with few carts or rates near 0 or 1 take it as an order of magnitude.
    ``None`` when there is no lift to detect.
    """
    if lift <= 0 or not 0 < treated_share < 1:
        return None
    p0 = min(max(base_rate, 0.0), 1.0)
    p1 = min(p0 + lift, 1.0)
    if p1 <= p0:
        return None
    k = treated_share / (1 - treated_share)
    z_beta = NormalDist().inv_cdf(power)
    variance = p1 * (1 - p1) / k + p0 * (1 - p0)
    # A rate of exactly 0 (or 1) has no variance; the floor keeps the guide finite and honest.
    variance = max(variance, lift * (1 - lift) / (k + 1))
    return math.ceil((z_alpha + z_beta) ** 2 * variance / (lift * lift))


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (the usual "type 7" percentile)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, not {successes} of {trials}")
