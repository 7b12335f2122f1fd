"""The response model and the store model: documented, deterministic, shaped like seed 000."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recovery.response import (
    ResponseModel,
    organic_order,
    parse_response,
    redeems,
    touch_order,
)
from recovery.storemodel import StoreModel, generate, parse_store_model

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_the_shipped_files_are_the_code_defaults():
    assert (
        parse_response(yaml.safe_load((POLICIES / "response.yaml").read_text())) == ResponseModel()
    )
    shipped = yaml.safe_load((POLICIES / "store-model.yaml").read_text())
    assert parse_store_model(shipped) == StoreModel()


def test_incentives_lift_a_touch_and_the_factors_apply():
    model = ResponseModel()
    plain = {"channel": "email", "segment": "new", "incentive": None}
    coupon = {**plain, "incentive": {"kind": "percent_off", "value": "12"}}
    service = {**plain, "incentive": {"kind": "service", "service": "concierge"}}
    assert model.touch_probability(plain, Decimal(80)) == pytest.approx(0.015)
    assert model.touch_probability(coupon, Decimal(80)) == pytest.approx(0.015 * 1.48)
    assert model.touch_probability(service, Decimal(80)) == pytest.approx(0.015 * 1.5)
    assert model.touch_probability(plain, Decimal(900)) == pytest.approx(0.015 * 0.8)
    returning = {**plain, "segment": "returning"}
    assert model.touch_probability(returning, Decimal(80)) == pytest.approx(0.015 * 1.3)
    assert model.band_of(Decimal("49.99")) == "low" and model.band_of(Decimal(600)) == "vip"


def test_bad_models_are_refused_with_the_field():
    with pytest.raises(ValidationError, match="baseline"):
        parse_response({"baseline": 1.5})
    with pytest.raises(ValidationError, match="unknown channel"):
        parse_response({"touch": {"fax": 0.1}})
    with pytest.raises(ValidationError, match="increasing"):
        parse_response({"bands": {"a": 10, "b": 5}})
    with pytest.raises(ValidationError, match="nope"):
        parse_store_model({"store_model": {"nope": 1}})


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), checkout=st.text(min_size=1, max_size=12))
def test_draws_are_functions_of_seed_and_cart(seed, checkout):
    model = ResponseModel(baseline=0.5, touch={"email": 0.5})
    touch = {"channel": "email", "segment": "new", "step": 1}
    assert organic_order(model, seed, checkout, 1000.0) == organic_order(
        model, seed, checkout, 1000.0
    )
    first = touch_order(model, seed, checkout, touch, Decimal(80), 5000.0)
    assert first == touch_order(model, seed, checkout, touch, Decimal(80), 5000.0)
    if first is not None:
        assert first >= 5000.0
    assert redeems(model, seed, checkout) == redeems(model, seed, checkout)


def test_rates_match_the_model_over_many_carts():
    model = ResponseModel(baseline=0.2)
    organic = [organic_order(model, 7, f"c{n}", 0.0) for n in range(5000)]
    share = sum(at is not None for at in organic) / 5000
    assert 0.18 < share < 0.22
    assert all(at <= model.max_organic_delay_hours * 3600 for at in organic if at is not None)
    touch = {"channel": "sms", "segment": "new", "step": 2}
    hits = sum(
        touch_order(model, 7, f"c{n}", touch, Decimal(80), 0.0) is not None for n in range(5000)
    )
    assert 0.03 < hits / 5000 < 0.05


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_generated_month_has_seed_000s_shape(seed):
    events = generate(StoreModel(), seed, 1, datetime(2026, 9, 1, tzinfo=UTC))
    assert len(events) == 1900
    totals = [Decimal(e["total"]) for _, e in events]
    under_50 = sum(t < 50 for t in totals)
    over_200 = sum(t >= 200 for t in totals)
    assert 560 <= under_50 <= 720  # seed 000: about 640
    assert 160 <= over_200 <= 260  # seed 000: about 210
    mean = sum(totals) / len(totals)
    assert Decimal(85) <= mean <= Decimal(115)  # AOV 96, right-skewed
    assert sorted(totals)[len(totals) // 2] < mean  # median below the mean
    contacts = [e["contact"] for _, e in events]
    sms = sum(bool(c["sms_consent"]) for c in contacts) / len(contacts)
    assert 0.28 < sms < 0.42
    assert all(c["sms_phone"].startswith("+1") for c in contacts if c["sms_consent"])
    states = {e["shipping_address"]["province_code"] for _, e in events}
    assert {"NY", "IL", "CO", "CA"} <= states
    known = [e["customer"]["orders_count"] for _, e in events if "customer" in e]
    assert any(n >= 3 for n in known) and any(n < 3 for n in known)
    assert [t for t, _ in events] == sorted(t for t, _ in events)


def test_same_seed_same_traffic():
    start = datetime(2026, 9, 1, tzinfo=UTC)
    assert generate(StoreModel(), 4, 1, start) == generate(StoreModel(), 4, 1, start)
    assert generate(StoreModel(), 4, 1, start) != generate(StoreModel(), 5, 1, start)
    assert StoreModel().cart_value(random.Random(1)) >= StoreModel().min_cart
