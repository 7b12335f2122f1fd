"""The core's speed helpers agree with the plain definitions they replace."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.policyfile import load_policy
from recovery.bands import classify
from recovery.fast_constructors import fast_constructor
from recovery.ids import touch_id, touch_ids
from recovery.model import Decision, Plan, PlannedTouch
from recovery.policy_tables import compile_policy

POLICY = load_policy().defaults
AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_touch_ids_match_touch_id():
    assert touch_ids("s", "s:x", "c", 3, 7) == [
        touch_id("s", "s:x", "c", 3, n) for n in range(1, 8)
    ]


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-10, max_value=5000, places=2))
def test_compiled_band_lookup_matches_classify(amount: Decimal):
    assert compile_policy(POLICY).band_for(amount).band is classify(amount, POLICY)


def test_compiled_policy_is_cached_per_object():
    assert compile_policy(POLICY) is compile_policy(POLICY)
    other = POLICY.model_copy(update={"timezone": "Europe/Berlin"})
    assert compile_policy(other).policy is other


def test_fast_constructor_equals_the_dataclass_constructor():
    make = fast_constructor(PlannedTouch)
    values = ("t_1", 2, "sms", "offer", AT, "percent_off", Decimal(10), None, 3600, None,
              Decimal("5.00"), "why", None)  # fmt: skip
    fast, slow = make(*values), PlannedTouch(*values)
    assert fast == slow and hash(fast) == hash(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.step = 3  # type: ignore[misc]
    # defaults apply as in the dataclass
    plan = fast_constructor(Plan)("s", "x", "c", "high", "new", 1, ())
    assert plan == Plan("s", "x", "c", "high", "new", 1, ())
    assert fast_constructor(Decision)("skip", "holdout: x") == Decision("skip", "holdout: x")
    with pytest.raises(TypeError):
        fast_constructor(int)  # type: ignore[arg-type]
