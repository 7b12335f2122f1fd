"""The per-band report from ledger outcomes: numbers that reconcile, verdicts, currencies."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from decimal import Decimal

import pytest

from recovery.report import ReportError, build_report, build_reports, money
from recovery.stats import newcombe_difference
from tests.recovery.report_rows import band_rows, cart


def test_the_numbers_reconcile_with_the_outcomes():
    rows = band_rows("mid", 300, 60, 100, 8, 0, margin="40", discount="5", email="0.01")
    rows += band_rows("low", 200, 30, 50, 6, 1000, margin="12", discount="0", email="0.01")
    rows.append(cart(5000, "mid", "treated", "open", email="0.01"))
    report = build_report(rows, scope="store s1", band_order=["low", "mid"], resamples=200)

    assert [b.band for b in report.bands] == ["low", "mid"]
    assert report.open_carts == 1
    mid = report.bands[1]
    assert (mid.treated.carts, mid.holdout.carts) == (300, 100)
    assert (mid.treated.recovered, mid.holdout.recovered) == (60, 8)
    assert mid.treated.rate.estimate == pytest.approx(0.2)
    assert mid.lift == newcombe_difference(60, 300, 8, 100)
    assert mid.treated.margin == Decimal(60 * 40)
    assert mid.treated.discount == Decimal(60 * 5)
    assert mid.treated.channel_costs == Decimal("3.00")  # the open cart's touch is not counted
    assert mid.treated.spend == Decimal("303.00")
    # Per cart, after channel costs: (2400 - 3) / 300 - 320 / 100 = 7.99 - 3.20.
    assert mid.incremental_margin is not None
    assert mid.incremental_margin.estimate == Decimal("4.79")
    assert mid.incremental_margin.low < Decimal("4.79") < mid.incremental_margin.high
    assert mid.margin_per_spend == Decimal(2400) / Decimal("303.00")
    assert mid.incremental_margin_per_spend == (Decimal(2400) - 300 * Decimal(320) / 100) / Decimal(
        "303.00"
    )
    total = report.total
    assert total.treated.carts == sum(b.treated.carts for b in report.bands)
    assert total.holdout.recovered == sum(b.holdout.recovered for b in report.bands)
    assert total.treated.spend == sum(b.treated.spend for b in report.bands)
    assert total.treated.margin == sum(b.treated.margin for b in report.bands)
    # The total's rates are each band's weighed by its carts, as its lift compares them.
    assert mid.rates == (0.2, 0.08)
    assert total.rates is not None and total.lift is not None
    assert total.rates[0] == pytest.approx(400 / 650 * 0.2 + 250 / 650 * 0.15)
    assert total.rates[1] == pytest.approx(400 / 650 * 0.08 + 250 / 650 * 0.12)
    assert total.rates[0] - total.rates[1] == pytest.approx(total.lift.estimate)
    # The margin the spend bought: each band's treated carts against their own holdout.
    expected = 300 * Decimal(320) / 100 + 200 * Decimal(72) / 50
    assert total.incremental_margin_per_spend == (Decimal(2400 + 360) - expected) / Decimal(
        "305.00"
    )
    # The total weighs each band by its carts: 400/650 of mid's, 250/650 of low's.
    low = report.bands[0]
    assert low.incremental_margin is not None
    weighted = (400 * Decimal("4.79") + 250 * (Decimal("1.79") - Decimal("1.44"))) / 650
    assert total.incremental_margin is not None
    assert abs(total.incremental_margin.estimate - weighted) <= Decimal("0.01")


def test_a_band_that_pays_says_so_with_its_interval():
    rows = band_rows("high", 400, 120, 200, 20, 0, margin="60", discount="0", email="0.5")
    band = build_report(rows, scope="s", resamples=400).bands[0]
    assert band.verdict == "pays"
    margin = band.incremental_margin
    assert margin is not None
    assert band.verdict_text == (
        f"pays: +${margin.estimate:.2f} margin per cart, "
        f"95% CI +{margin.low:.2f}..+{margin.high:.2f}"
    )


def test_a_band_whose_coupons_cost_more_than_they_bring_says_so():
    # Same recovery rate as the holdout; each treated recovery gave 30 of its 40 away, and
    # every treated cart had an SMS.
    rows = band_rows("low", 300, 30, 100, 10, 0, margin="10", discount="30", sms="0.8")
    for i in range(100):
        rows[300 + i] = cart(
            300 + i, "low", "holdout", "recovered" if i < 10 else "not_recovered", margin="40"
        )
    band = build_report(rows, scope="s", resamples=400).bands[0]
    assert band.verdict == "costs"
    assert band.verdict_text.startswith("costs more than it brings: -$")


def test_a_margin_interval_above_zero_is_not_pays_while_the_lift_is_unclear():
    # make run's low band: 40 of 619 treated carts recovered, 1 of 37 held out. The bootstrap
    # puts the margin difference above zero (most resamples hold no recovered holdout cart),
    # but the lift's interval (Newcombe) spans zero: too few holdout carts to say it pays.
    rows = band_rows("low", 619, 40, 0, 0, 0, margin="14", discount="0", email="0.001")
    rows += [
        cart(700 + i, "low", "holdout", "recovered" if i == 0 else "not_recovered", margin="6.6")
        for i in range(37)
    ]
    band = build_report(rows, scope="s", resamples=1000).bands[0]
    assert band.lift is not None and band.lift.low < 0 < band.lift.high
    assert band.incremental_margin is not None and band.incremental_margin.low > 0
    assert band.verdict == "too_few"
    assert band.holdout_needed is not None and band.holdout_needed > 37
    assert band.verdict_text.startswith("too few carts to tell: 37 holdout carts, need ~")


def test_small_counts_get_too_few_to_tell_with_the_holdout_needed():
    rows = band_rows("vip", 40, 8, 12, 1, 0, margin="50", discount="0", email="0.01")
    band = build_report(rows, scope="s", resamples=200).bands[0]
    assert band.verdict == "too_few"
    assert band.holdout_needed is not None and band.holdout_needed > 12
    assert band.verdict_text.startswith(
        f"too few carts to tell: 12 holdout carts, need ~{band.holdout_needed} to see a "
    )


def test_a_large_lift_never_asks_for_fewer_holdout_carts_than_the_floor():
    # 9 holdout carts, none recovered, against 60% treated: the power guide alone says ~3
    rows = band_rows("high", 90, 54, 9, 0, 0, margin="50", discount="0", email="0.01")
    band = build_report(rows, scope="s", resamples=200).bands[0]
    assert band.verdict == "too_few"
    assert band.holdout_needed is not None and band.holdout_needed >= 20 > 9
    assert f"9 holdout carts, need ~{band.holdout_needed}" in band.verdict_text


def test_a_band_without_holdout_carts_has_no_lift_and_says_why():
    rows = [
        cart(i, "low", "treated", "recovered" if i < 5 else "not_recovered", margin="10")
        for i in range(50)
    ]
    band = build_report(rows, scope="s", resamples=50).bands[0]
    assert band.lift is None and band.incremental_margin is None
    assert band.verdict == "too_few"
    assert "no holdout carts" in band.verdict_text


def test_a_wide_interval_on_many_carts_is_no_clear_difference():
    rng = random.Random(5)
    rows = []
    for i in range(10000):
        group = "treated" if i % 2 else "holdout"
        outcome = "recovered" if rng.random() < 0.1 else "not_recovered"
        rows.append(cart(i, "mid", group, outcome, margin="30"))
    # 5,000 holdout carts: more than the ~3,800 needed to see a 2-point lift, and none seen.
    band = build_report(rows, scope="s", resamples=100).bands[0]
    assert band.holdout.carts > (band.holdout_needed or 0)
    assert band.verdict == "unclear"
    assert band.verdict_text.startswith("no clear difference: ")


def test_currencies_are_never_added():
    rows = [cart(1, "low", "treated", currency="USD"), cart(2, "low", "holdout", currency="EUR")]
    with pytest.raises(ReportError, match="EUR, USD"):
        build_report(rows, scope="s")
    reports = build_reports(rows, resamples=10)
    assert [(r.currency, r.total.treated.carts + r.total.holdout.carts) for r in reports] == [
        ("EUR", 1),
        ("USD", 1),
    ]


def test_a_store_report_holds_only_that_store():
    rows = [cart(1, "low", "treated", store="a"), cart(2, "low", "treated", store="b")]
    (report,) = build_reports(rows, store="a", resamples=10)
    assert report.scope == "store a" and report.total.treated.carts == 1


def test_the_bootstrap_makes_the_same_report_for_the_same_seed():
    rows = band_rows("mid", 120, 30, 40, 5, 0, margin="40", discount="5", email="0.01")
    first = build_report(rows, scope="s", seed=3, resamples=300)
    assert first == build_report(rows, scope="s", seed=3, resamples=300)
    assert first != build_report(rows, scope="s", seed=4, resamples=300)


def test_a_verdict_names_a_currency_without_a_symbol():
    rows = band_rows("high", 400, 120, 200, 20, 0, margin="60", discount="0", email="0.5")
    rows = [replace(o, currency="SEK") for o in rows]
    band = build_report(rows, scope="s", resamples=200).bands[0]
    assert band.verdict == "pays"
    assert re.fullmatch(
        r"pays: \+[\d.,]+ SEK margin per cart, 95% CI \+[\d.]+\.\.\+[\d.]+", band.verdict_text
    )


def test_money_is_shown_in_its_currency():
    assert money(Decimal("1234.5"), "USD") == "$1,234.50"
    assert money(Decimal("-4.1"), "EUR") == "-€4.10"
    assert money(Decimal("12"), "SEK") == "12.00 SEK"
