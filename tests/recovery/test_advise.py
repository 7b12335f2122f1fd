"""The band advisor (recovery.advise) and band drift (recovery.band_drift), pure."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from recovery.advise import (
    AdviceError,
    Assumptions,
    HistoryCart,
    advise,
    economics,
    price_point,
    valleys,
)
from recovery.band_drift import drift

START = datetime(2026, 1, 1, tzinfo=UTC)
SEED_BANDS = [
    ("low", Decimal(0)),
    ("mid", Decimal(50)),
    ("high", Decimal(200)),
    ("vip", Decimal(600)),
]


def lognormal(
    rng: random.Random, median: float, sigma: float, n: int, days: int = 90, start: datetime = START
) -> list[HistoryCart]:
    return [
        HistoryCart(
            Decimal(f"{median * math.exp(rng.gauss(0, sigma)):.2f}"),
            "USD",
            start + timedelta(minutes=rng.randrange(days * 24 * 60)),
            False,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_three_clusters_get_thresholds_between_them(seed: int):
    rng = random.Random(seed)
    carts = (
        lognormal(rng, 25, 0.25, 900)
        + lognormal(rng, 140, 0.25, 700)
        + lognormal(rng, 900, 0.2, 300)
    )
    advice = advise(carts)
    assert not advice.flags
    low, high = advice.thresholds[:2]
    # between the clusters: above the first's 97.5th percentile (25 e^0.5 = 41), below the
    # second's 2.5th (140 e^-0.5 = 85); likewise for the second gap
    assert 41 < low < 85, advice.thresholds
    assert 231 < high < 604, advice.thresholds
    assert len(advice.valleys) == 2
    assert [band.name for band in advice.bands][:3] == ["low", "mid", "high"]
    assert sum(band.carts for band in advice.bands) == len(carts)
    assert abs(advice.bands[0].carts - 900) < 60 and abs(advice.bands[1].carts - 700) < 60


def test_two_clusters_keep_the_gap_as_a_boundary():
    rng = random.Random(7)
    carts = lognormal(rng, 30, 0.25, 1200) + lognormal(rng, 400, 0.25, 600)
    advice = advise(carts)
    assert len(advice.valleys) == 1
    assert any(55 < t < 220 for t in advice.thresholds), advice.thresholds


def test_a_unimodal_spread_gets_the_seed_shares_and_price_points():
    rng = random.Random(3)
    carts = lognormal(rng, 70, 0.9, 1900, days=30)
    advice = advise(carts)
    assert advice.valleys == []
    shares = [band.share for band in advice.bands]
    assert Decimal("0.25") < shares[0] < Decimal("0.42")  # about a third in low
    assert all(price_point(t) == t for t in advice.thresholds)
    assert "33rd percentile" in advice.reasons[0]


def test_single_price_point_recommends_one_flow():
    rng = random.Random(1)
    carts = [
        HistoryCart(
            Decimal(rng.choice(["49.00", "49.00", "49.00", "52.00", "45.00"])),
            "USD",
            START + timedelta(hours=i),
            False,
        )
        for i in range(2000)
    ]
    advice = advise(carts)
    assert advice.one_flow and advice.thresholds == []
    assert advice.bands[0].name == "all" and advice.bands[0].carts == 2000
    assert any("one price point" in flag or "nothing to tier" in flag for flag in advice.flags)


def test_a_tiny_history_gets_the_volume_red_flag():
    rng = random.Random(2)
    carts = lognormal(rng, 25, 0.25, 60, days=60) + lognormal(rng, 300, 0.25, 60, days=60)
    advice = advise(carts)
    assert advice.one_flow
    assert advice.per_month < 300
    assert any("a month (under 300)" in flag for flag in advice.flags), advice.flags


def test_enough_volume_has_no_volume_flag_and_the_limit_is_an_assumption():
    rng = random.Random(2)
    carts = lognormal(rng, 25, 0.25, 700, days=30) + lognormal(rng, 300, 0.25, 700, days=30)
    assert not advise(carts).flags
    assert advise(carts, Assumptions(min_monthly=5000)).one_flow


def test_mixed_currencies_are_refused_naming_each_or_split_by_choice():
    rng = random.Random(4)
    usd = lognormal(rng, 80, 0.8, 500, days=30)
    eur = [HistoryCart(c.total, "EUR", c.time, c.converted) for c in usd[:200]]
    with pytest.raises(AdviceError, match=r"EUR \(200 carts\), USD \(500 carts\)"):
        advise(usd + eur)
    assert advise(usd + eur, currency="USD").carts == 500
    with pytest.raises(AdviceError, match="no cart in GBP"):
        advise(usd, currency="GBP")


def test_only_abandoned_carts_are_banded_when_there_are_any():
    rng = random.Random(5)
    carts = lognormal(rng, 80, 0.8, 800, days=30)
    orders = [HistoryCart(c.total * 10, "USD", c.time, True) for c in carts]
    advice = advise(carts + orders)
    assert advice.abandoned and advice.carts == 800
    orders_only = advise(orders)
    assert not orders_only.abandoned and orders_only.carts == 800


def test_thin_margins_on_low_carts_raise_the_low_ceiling():
    rng = random.Random(6)
    carts = lognormal(rng, 80, 0.9, 3000, days=30)
    # goods under 60 earn 15%: a 10% coupon erases two thirds of it
    thin = [
        HistoryCart(c.total, c.currency, c.time, False, Decimal("0.15" if c.total < 60 else "0.5"))
        for c in carts
    ]
    plain = advise(carts)
    raised = advise(thin)
    assert plain.economics.get("low_ceiling") is None
    assert Decimal(50) <= raised.economics["low_ceiling"] < Decimal(60)
    assert raised.thresholds[0] >= Decimal(50)
    assert any("low ceiling raised" in reason for reason in raised.reasons)
    low, mid = raised.bands[:2]
    assert low.median is not None and low.coupon_cost == (low.median / 10).quantize(Decimal("0.01"))
    assert low.margin is not None and mid.margin is not None and mid.median is not None
    # the band's own margin: 15% of the low median cart, 50% of the mid one
    assert low.margin == (low.median * Decimal("0.15")).quantize(Decimal("0.01"))
    assert mid.margin == (mid.median * Decimal("0.5")).quantize(Decimal("0.01"))


def test_the_economic_floors_follow_the_costs():
    carts = [HistoryCart(Decimal(100), "USD", START, False)]
    cheap = economics(carts, Decimal("0.5"), Assumptions())
    dear = economics(
        carts, Decimal("0.5"), Assumptions(costs={"sms": Decimal("0.05"), "ads": Decimal(2)})
    )
    # 2 x (0.0083 + 0.50) / (0.04 x (0.5 - 0.10))
    assert cheap["high_floor"] == Decimal("63.54")
    assert dear["high_floor"] == Decimal("256.25")
    assert dear["vip_floor"] == Decimal("205.00")  # no person: costs only sms + ads here


def test_an_expensive_person_raises_the_vip_floor():
    rng = random.Random(8)
    carts = lognormal(rng, 120, 1.0, 6000, days=30)
    base = advise(carts)
    pricey = advise(carts, Assumptions(costs={"sms": Decimal("0.01"), "human": Decimal(40)}))
    assert pricey.thresholds[-1] > base.thresholds[-1] or len(pricey.thresholds) < 3
    assert any("VIP floor raised" in r for r in pricey.reasons)


@pytest.mark.parametrize(
    ("raw", "point"),
    [
        ("47.3", "50"),
        ("180", "200"),
        ("612", "600"),
        ("0.37", "0.4"),
        ("333", "300"),
        ("1234", "1500"),
    ],
)
def test_price_points(raw: str, point: str):
    assert price_point(Decimal(raw)) == Decimal(point)


def test_no_valleys_in_one_value():
    assert valleys([2.0] * 50) == []


def seed_store(rng: random.Random, start: datetime, median: float, n: int) -> list[HistoryCart]:
    return lognormal(rng, median, 0.8, n, days=88, start=start)


def test_drift_compares_the_earliest_and_latest_quarter():
    rng = random.Random(9)
    then = seed_store(rng, datetime(2026, 1, 1, tzinfo=UTC), 60, 1500)
    now = seed_store(rng, datetime(2026, 7, 1, tzinfo=UTC), 150, 1500)
    result = drift(then + now, SEED_BANDS, "USD")
    assert (result.then_label, result.now_label) == ("2026-Q1", "2026-Q3")
    low, _, high, _ = result.shares
    assert low.then is not None and low.then > low.now + Decimal("0.15") and low.drifted
    assert high.then is not None and high.now > high.then and high.drifted
    assert sum(share.now for share in result.shares) == pytest.approx(
        Decimal(1), abs=Decimal("0.001")
    )
    text = "\n".join(result.lines())
    assert (
        f"{high.now:.0%} of carts now (2026-Q3) fall in high; "
        f"when the bands were set (2026-Q1) it was {high.then:.0%}" in text
    )
    assert "move it" in text  # the values doubled: the mid floor of 50 no longer fits


def test_no_drift_when_the_carts_stay_put():
    rng = random.Random(10)
    then = seed_store(rng, datetime(2026, 1, 1, tzinfo=UTC), 96, 2000)
    now = seed_store(rng, datetime(2026, 4, 1, tzinfo=UTC), 96, 2000)
    result = drift(then + now, SEED_BANDS, "USD")
    assert not any(share.drifted for share in result.shares)
    assert "drifted" not in "\n".join(result.lines())


def test_drift_over_one_quarter_says_so():
    rng = random.Random(11)
    result = drift(seed_store(rng, START, 96, 1000), SEED_BANDS, "USD")
    assert result.then_label is None
    assert all(share.then is None for share in result.shares)
    assert "spans one quarter" in "\n".join(result.lines())


def test_drift_needs_carts_in_the_bands_currency():
    rng = random.Random(12)
    with pytest.raises(AdviceError, match="bands are in EUR"):
        drift(seed_store(rng, START, 96, 100), SEED_BANDS, "EUR")


def test_drift_of_a_small_store_says_the_advisor_wants_one_flow():
    rng = random.Random(13)
    then = seed_store(rng, datetime(2026, 1, 1, tzinfo=UTC), 96, 200)
    now = seed_store(rng, datetime(2026, 4, 1, tzinfo=UTC), 96, 200)
    text = "\n".join(drift(then + now, SEED_BANDS, "USD").lines())
    assert "on 2026-Q2's carts the advisor recommends one flow: only" in text
    assert "starts at" not in text


def test_a_history_shorter_than_a_month_is_not_extrapolated():
    rng = random.Random(14)
    advice = advise(lognormal(rng, 96, 0.8, 250, days=3))
    assert advice.months == 1 and advice.per_month == 250
    assert advice.one_flow
    assert "the history spans 3 days: its carts count as one month's" in advice.reasons[0]


def test_boundaries_without_carts_make_no_band():
    rng = random.Random(15)
    carts = [
        HistoryCart(Decimal(f"{rng.uniform(40, 60):.2f}"), "USD", START + timedelta(hours=i), False)
        for i in range(3000)
    ]
    advice = advise(carts)
    assert not advice.flags
    assert advice.thresholds == sorted(set(advice.thresholds))
    # the 89th percentile (57.9) rounds to 60, the top of the values: a band of a handful
    assert advice.thresholds == [Decimal(50)]
    assert all(band.carts > 0 for band in advice.bands)
    assert "no mid band" not in " ".join(advice.reasons)
    assert any(
        r.startswith("no high band from 60.00 USD:") and r.endswith("(under 1%)")
        for r in advice.reasons
    ), advice.reasons
