from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.policyfile import load_policy
from recovery.bands import band_index, band_range, classify
from recovery.policy_tables import compile_policy
from recovery.response import ResponseModel
from recovery.whatif import value_band


@pytest.fixture(scope="module")
def policy():
    return load_policy().defaults


@pytest.mark.parametrize(
    ("amount", "band"),
    [
        ("0", "low"),
        ("49.99", "low"),
        ("50.00", "mid"),
        ("50", "mid"),
        ("199.99", "mid"),
        ("200", "high"),
        ("599.99", "high"),
        ("600", "vip"),
        ("600.00", "vip"),
        ("1400", "vip"),
    ],
)
def test_default_band_edges(policy, amount, band):
    assert classify(Decimal(amount), policy).name == band


def test_negative_amount_falls_in_first_band(policy):
    assert classify(Decimal("-5"), policy).name == "low"


def test_band_ranges_are_half_open(policy):
    assert band_range(policy, policy.band_named("mid")) == (Decimal("50"), Decimal("200"))
    assert band_range(policy, policy.band_named("vip")) == (Decimal("600"), None)


def test_low_band_has_no_incentive_in_default_policy(policy):
    assert all(t.incentive is None for t in policy.band_named("low").sequence)


def test_bands_use_the_store_currency_value_not_the_cart_currency():
    from datetime import UTC, datetime

    from recovery.model import Cart, Profile
    from recovery.plan import plan_recovery

    policy = load_policy().for_store("acme-eu")
    eur = Cart("acme-eu", "c", "EUR", Decimal("210"), datetime(2026, 1, 1, tzinfo=UTC))
    usd = Cart("acme-eu", "c", "USD", Decimal("210"), datetime(2026, 1, 1, tzinfo=UTC))
    assert plan_recovery(Profile(), eur, "x", policy, eur.abandoned_at).band == "high"
    rejected = plan_recovery(Profile(), usd, "x", policy, usd.abandoned_at)
    assert rejected.rejected is not None and rejected.touches == ()


@given(
    st.lists(st.decimals(min_value=1, max_value=10_000, places=2), max_size=6, unique=True),
    st.decimals(min_value=-100, max_value=20_000, places=2),
)
def test_band_index_is_the_last_minimum_the_amount_reaches(rest, amount):
    mins = [Decimal(0), *sorted(rest)]
    reached = [i for i, low in enumerate(mins) if amount >= low]
    assert band_index(mins, amount) == (reached[-1] if reached else 0)


@given(st.decimals(min_value=-100, max_value=5_000, places=2))
def test_every_user_of_the_band_rule_agrees(amount):
    policy = load_policy().defaults
    names = [band.name for band in policy.bands]
    expected = classify(amount, policy).name
    assert compile_policy(policy).band_for(amount).band.name == expected
    assert value_band([(band.name, band.min) for band in policy.bands], amount) == expected
    model = ResponseModel(bands=dict(zip(names, (band.min for band in policy.bands), strict=True)))
    assert model.band_of(amount) == expected
