"""Intervals of the report: published values, coverage, determinism."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from recovery.stats import (
    bootstrap_mean_difference,
    holdout_needed,
    newcombe_difference,
    stratified_bootstrap,
    wilson,
)

# Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10 (hybrid score):
# the paper's worked examples (a), (b), (d)-(h), to four decimals.
NEWCOMBE_EXAMPLES = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_EXAMPLES)
def test_newcombe_matches_the_published_examples(counts, expected):
    interval = newcombe_difference(*counts)
    assert (round(interval.low, 4), round(interval.high, 4)) == expected
    assert interval.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])


def test_wilson_at_zero_and_all_successes_is_not_a_point():
    none, every = wilson(0, 10), wilson(10, 10)
    assert none.low == 0.0 and round(none.high, 4) == 0.2775
    assert every.high == 1.0 and round(every.low, 4) == 0.7225
    assert wilson(0, 0).low == 0.0 and wilson(0, 0).high == 1.0
    with pytest.raises(ValueError):
        wilson(11, 10)


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def test_the_lift_interval_covers_a_planted_lift_in_93_to_97_percent_of_400_seeds():
    # A band of 300 treated and 100 holdout carts; the touches lift recovery from 8% to 14%.
    true_treated, true_holdout = 0.14, 0.08
    planted = true_treated - true_holdout
    covered = 0
    for seed in range(400):
        rng = random.Random(seed)
        x1, x2 = _binomial(rng, 300, true_treated), _binomial(rng, 100, true_holdout)
        covered += newcombe_difference(x1, 300, x2, 100).covers(planted)
    assert 0.93 <= covered / 400 <= 0.97


def test_bootstrap_is_deterministic_for_a_seed_and_moves_with_it():
    rng = random.Random(3)
    treated = [Decimal(rng.choice([0, 0, 0, 40])) for _ in range(200)]
    holdout = [Decimal(rng.choice([0, 0, 0, 0, 40])) for _ in range(60)]
    first = bootstrap_mean_difference(treated, holdout, seed=11)
    again = bootstrap_mean_difference(treated, holdout, seed=11)
    other = bootstrap_mean_difference(treated, holdout, seed=12)
    assert first == again
    assert first is not None and other is not None
    assert (first.low, first.high) != (other.low, other.high)
    mean = float(sum(treated) / len(treated) - sum(holdout) / len(holdout))
    assert first.estimate == pytest.approx(mean)
    assert first.low < mean < first.high


def test_bootstrap_needs_both_groups():
    assert bootstrap_mean_difference([Decimal(1)], [], seed=0) is None
    with pytest.raises(ValueError):
        stratified_bootstrap([([Decimal(1)], [])], seed=0)


def test_stratified_bootstrap_weighs_strata_by_their_carts():
    # Stratum A (100 carts): +10 per cart; stratum B (300 carts): +2 per cart.
    a = ([Decimal(10)] * 50, [Decimal(0)] * 50)
    b = ([Decimal(2)] * 200, [Decimal(0)] * 100)
    result = stratified_bootstrap([a, b], seed=0, resamples=50)
    assert result.estimate == pytest.approx(0.25 * 10 + 0.75 * 2)
    assert result.low == pytest.approx(4.0) and result.high == pytest.approx(4.0)


def test_holdout_needed_shrinks_as_the_lift_grows():
    small = holdout_needed(0.08, 0.02, treated_share=0.9)
    large = holdout_needed(0.08, 0.06, treated_share=0.9)
    assert small is not None and large is not None and small > large > 0
    # 8% -> 14%, treated 3x the holdout, 5% two-sided, 80% power:
    # (1.95996 + 0.84162)^2 * (0.14 * 0.86 / 3 + 0.08 * 0.92) / 0.06^2 = 247.97 -> 248.
    assert holdout_needed(0.08, 0.06, treated_share=0.75) == 248
    assert holdout_needed(0.08, 0.0, treated_share=0.9) is None
    assert holdout_needed(0.0, 0.05, treated_share=0.5) is not None
