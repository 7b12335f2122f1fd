"""The ledger folds what the stream wrote into one outcome per abandoned cart, and adds up."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from config.policyfile import DEFAULT_POLICY, load_policy
from recovery.checkouts import epoch
from recovery.ledger import LedgerError, by_band, by_channel, by_segment, outcomes, reconcile
from recovery.policyset import PolicySet
from recovery.simulate import simulate
from streams.app import code_secret
from tests.pipeline.helpers import T0, cart, order

HOUR = 3600.0
DAY = 86400.0
LATER = datetime.fromtimestamp(T0 + 60 * DAY, UTC)


def _policy(holdout: str, ads_cost: str = "0.40") -> PolicySet:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    for band in data["defaults"]["bands"]:
        band["holdout"] = holdout
    data["defaults"]["delivery"]["costs"]["ads"] = ads_cost
    path = Path(tempfile.mkdtemp()) / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_policy(path)


TREATED = _policy("0")
HOLDOUT = _policy("1")


def _results(touches: list[dict[str, Any]], outcome: str = "delivered") -> list[dict[str, Any]]:
    """The senders' touch results for ``touches``, as on ``touch-results``."""
    return [
        {
            "type": "touch_result", "touch_id": t["touch_id"], "store": t["store"],
            "shopper": t["shopper"], "cart": t["cart"], "channel": t["channel"],
            "step": t["step"], "band": t["band"], "outcome": outcome, "at": t["due_at"],
            "provider": "outbox",
        }
        for t in touches
    ]  # fmt: skip


def _records(policies: PolicySet, *events: dict[str, Any]) -> list[dict[str, Any]]:
    """What the stream writes to ``recoveries`` and ``touch-results`` for ``events``, every
    touch delivered."""
    timed = sorted(((epoch(e["occurred_at"], "t"), e) for e in events), key=lambda p: p[0])
    sim = simulate(timed, policies, code_secret)
    return [*sim.plans, *sim.recoveries, *_results(sim.touches)]


def _by_checkout(rows: list[Any]) -> dict[str, Any]:
    return {row.checkout: row for row in rows}


CARTS = [
    cart("low-1", "30", T0),
    cart("mid-1", "120", T0 + HOUR),
    cart("mid-2", "90", T0 + 2 * HOUR),
    cart("high-1", "310", T0 + 3 * HOUR),
    cart("high-2", "250", T0 + 4 * HOUR),
    cart("vip-1", "900", T0 + 5 * HOUR),
]
ORDERS = [
    order("mid-1", "120", T0 + 30 * HOUR),  # after the SMS at 24 h: recovered
    order("high-1", "310", T0 + 20 * DAY),  # after the 48 h touches and 7 days: ordered later
    order("vip-1", "900", T0 + 6 * DAY),  # inside the window
]
RECORDS = _records(TREATED, *CARTS, *ORDERS)


def test_every_abandoned_cart_gets_exactly_one_outcome_and_the_sums_reconcile():
    rows = outcomes(RECORDS, TREATED, LATER)
    found = _by_checkout(rows)
    assert sorted(found) == sorted(c["checkout"] for c in CARTS)
    assert len(rows) == len(CARTS)
    assert {k: r.outcome for k, r in found.items()} == {
        "low-1": "not_recovered",
        "mid-1": "recovered",
        "mid-2": "not_recovered",
        "high-1": "ordered_later",
        "high-2": "not_recovered",
        "vip-1": "recovered",
    }
    assert reconcile(RECORDS, rows, LATER) == []
    assert found["mid-1"].revenue == Decimal("120")
    assert found["mid-1"].margin == Decimal("120") * Decimal("0.40") - found["mid-1"].discount
    # an order outside the window brings no revenue to the recovery
    assert (found["high-1"].revenue, found["high-1"].margin) == (0, 0)
    assert all(r.group == "treated" for r in rows)
    assert found["high-1"].band == "high" and found["low-1"].band == "low"
    assert found["vip-1"].value == Decimal("900") and found["vip-1"].currency == "USD"


def test_reconcile_names_a_cart_missing_or_counted_twice_and_money_that_does_not_add_up():
    rows = outcomes(RECORDS, TREATED, LATER)
    missing = [r for r in rows if r.checkout != "low-1"]
    assert any("low-1" in p and "0 ledger rows" in p for p in reconcile(RECORDS, missing, LATER))
    doubled = [*rows, rows[0]]
    assert any("2 ledger rows" in p for p in reconcile(RECORDS, doubled, LATER))
    from dataclasses import replace

    inflated = [replace(r, revenue=r.revenue + 1) if r.outcome == "recovered" else r for r in rows]
    problems = reconcile(RECORDS, inflated, LATER)
    assert any(p.startswith("band mid: revenue - discounts") for p in problems)


def test_a_cart_passed_over_for_the_shoppers_running_plan_appears_once_and_adds_nothing():
    # one shopper: a high cart, then a cheaper one while the high plan runs (kept), then an
    # order of the cheap one, which ends and recovers the kept plan
    records = _records(
        TREATED,
        cart("big", "310", T0, customer="one"),
        cart("small", "60", T0 + 3 * HOUR, customer="one"),
        order("small", "60", T0 + 30 * HOUR, customer="one"),
    )
    passed = [r for r in records if r.get("type") == "plan" and r.get("passed_over")]
    assert [(r["checkout"], r["passed_over"]["checkout"], r["touches"]) for r in passed] == [
        ("small", "big", [])
    ]
    rows = outcomes(records, TREATED, LATER)
    found = _by_checkout(rows)
    assert len(rows) == 2
    assert (found["big"].outcome, found["small"].outcome) == ("recovered", "passed_over")
    assert (found["small"].revenue, found["small"].spend) == (0, 0)
    assert reconcile(records, rows, LATER) == []
    summary = by_band(rows)[("mid", "treated")]
    assert (summary.carts, summary.passed_over, summary.decided) == (1, 1, 0)


def test_open_until_the_window_has_passed_then_not_recovered():
    records = _records(TREATED, cart("mid-9", "120", T0))
    # abandoned after an hour idle; mid: the SMS 24 h later, then the 7-day attribution window
    end = datetime.fromtimestamp(T0 + HOUR + 24 * HOUR + 7 * DAY, UTC)
    (before,) = outcomes(records, TREATED, end - timedelta(seconds=1))
    (after,) = outcomes(records, TREATED, end)
    assert (before.outcome, after.outcome) == ("open", "not_recovered")


def test_an_order_or_a_cart_after_as_of_is_not_known_yet():
    rows = outcomes(RECORDS, TREATED, datetime.fromtimestamp(T0 + 25 * HOUR, UTC))
    assert _by_checkout(rows)["mid-1"].outcome == "open"
    early = outcomes(RECORDS, TREATED, datetime.fromtimestamp(T0 + 2.5 * HOUR, UTC))
    assert [r.checkout for r in early] == ["low-1", "mid-1"]  # abandoned an hour after


def test_holdout_carts_have_no_costs_and_the_same_window_as_treated_ones():
    records = _records(HOLDOUT, *CARTS, *ORDERS)
    rows = _by_checkout(outcomes(records, HOLDOUT, LATER))
    assert {r.group for r in rows.values()} == {"holdout"}
    assert all(r.costs == {} and r.last_channel is None for r in rows.values())
    assert rows["mid-1"].outcome == "recovered"
    assert rows["high-1"].outcome == "ordered_later", "holdout windows are the band's too"
    assert rows["vip-1"].outcome == "recovered"
    assert rows["mid-2"].outcome == "not_recovered"
    plans = {p["checkout"]: p for p in records if p["type"] == "plan"}
    treated = {p["checkout"]: p for p in RECORDS if p["type"] == "plan"}
    assert {k: p["window_end"] for k, p in plans.items()} == {
        k: p["window_end"] for k, p in treated.items()
    }
    assert reconcile(records, list(rows.values()), LATER) == []


def test_channel_costs_count_each_delivered_touch_once_at_the_store_price():
    records = _records(TREATED, cart("high-7", "310", T0))
    plan = next(r for r in records if r["type"] == "plan")
    delivered = [r for r in records if r.get("type") == "touch_result"]
    channels = sorted(t["channel"] for t in plan["touches"])
    assert channels == ["ads", "email", "email", "human", "sms"]
    (row,) = outcomes([*records, *delivered], TREATED, LATER)  # every result twice
    assert row.costs == {
        "email": Decimal("0.002"),
        "ads": Decimal("0.40"),
        "sms": Decimal("0.0083"),
        "human": Decimal("3.00"),
    }
    assert row.spend == Decimal("3.4103")
    failed = [{**r, "outcome": "failed"} if r["channel"] == "human" else r for r in delivered]
    others = [r for r in records if r.get("type") != "touch_result"]
    (row,) = outcomes([*others, *failed], TREATED, LATER)
    assert "human" not in row.costs
    cheaper = _policy("0", ads_cost="0")
    (row,) = outcomes(records, cheaper, LATER)
    assert row.costs["ads"] == 0


def test_the_last_delivered_touch_before_the_order_is_credited():
    records = _records(TREATED, cart("mid-3", "120", T0), order("mid-3", "120", T0 + 30 * HOUR))
    (row,) = outcomes(records, TREATED, LATER)
    assert (row.outcome, row.last_channel, row.last_step) == ("recovered", "sms", 2)
    # the SMS failed: the email before it came last
    results = [
        {**r, "outcome": "failed"} if r.get("channel") == "sms" else r
        for r in records
        if r.get("type") == "touch_result"
    ]
    others = [r for r in records if r.get("type") != "touch_result"]
    (row,) = outcomes([*others, *results], TREATED, LATER)
    assert (row.last_channel, row.last_step) == ("email", 1)
    assert row.costs == {"email": Decimal("0.001")}


def test_an_order_before_any_touch_is_recovered_with_no_channel():
    records = _records(TREATED, cart("mid-4", "120", T0), order("mid-4", "120", T0 + 1.5 * HOUR))
    (row,) = outcomes(records, TREATED, LATER)
    assert row.outcome == "recovered" and row.last_channel is None
    assert row.revenue == Decimal("120")


def test_the_first_of_two_orders_counts():
    plan = next(r for r in RECORDS if r["type"] == "plan" and r["checkout"] == "mid-2")
    first = {
        "type": "recovery", "store": plan["store"], "shopper": plan["shopper"],
        "checkout": "mid-2", "cycle": plan["cycle"], "order_id": "o-b", "revenue": "40.00",
        "margin": "16.00", "discount": "0", "occurred_at": "2026-11-03T10:00:00Z",
        "touches_sent": [1],
    }  # fmt: skip
    second = {**first, "order_id": "o-a", "revenue": "70.00", "margin": "28.00"}
    second["occurred_at"] = "2026-11-04T10:00:00Z"
    records = [second, *RECORDS, first]
    row = _by_checkout(outcomes(records, TREATED, LATER))["mid-2"]
    assert (row.outcome, row.revenue) == ("recovered", Decimal("40.00"))
    assert reconcile(records, outcomes(records, TREATED, LATER), LATER) == []


def test_a_record_without_a_cycle_joins_its_checkout_s_latest_plan():
    stripped = [
        {k: v for k, v in r.items() if k != "cycle"} if r["type"] == "recovery" else r
        for r in RECORDS
    ]
    assert outcomes(stripped, TREATED, LATER) == outcomes(RECORDS, TREATED, LATER)


def test_summaries_by_band_segment_and_channel():
    rows = outcomes(RECORDS, TREATED, LATER)
    bands = by_band(rows)
    assert bands[("mid", "treated")].carts == 2
    assert bands[("mid", "treated")].recovered == 1
    assert bands[("high", "treated")].ordered_later == 1
    assert sum(s.carts for s in bands.values()) == len(CARTS)
    assert sum(s.carts for s in by_segment(rows).values()) == len(CARTS)
    total = sum((s.revenue for s in bands.values()), Decimal(0))
    assert total == Decimal("1020")
    channels = by_channel(rows)
    costs = sum((c.cost for c in channels.values()), Decimal(0))
    assert costs == sum((s.spend - s.discount for s in bands.values()), Decimal(0))
    assert channels["sms"].recovered_last == 1  # mid-1 after its SMS


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("group", "control", "group: expected treated or holdout"),
        ("window_end", "soon", "window_end: not an ISO 8601 time"),
        ("value", "lots", "value: not an amount"),
        ("cycle", "2", "cycle: expected an integer"),
    ],
)
def test_a_record_it_cannot_read_is_named(field: str, value: str, message: str):
    plan = next(r for r in RECORDS if r["type"] == "plan")
    with pytest.raises(LedgerError, match=message) as err:
        outcomes([{**plan, field: value}], TREATED, LATER)
    assert plan["checkout"] in str(err.value)


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(RECORDS))),
    repeats=st.lists(st.integers(0, len(RECORDS) - 1), max_size=20),
    as_of=st.sampled_from([T0 + 2 * HOUR, T0 + 30 * HOUR, T0 + 9 * DAY, T0 + 60 * DAY]),
)
def test_shuffled_and_repeated_records_give_the_same_ledger(order, repeats, as_of):
    when = datetime.fromtimestamp(as_of, UTC)
    iso = when.isoformat().replace("+00:00", "Z")
    shuffled = [RECORDS[i] for i in order] + [RECORDS[i] for i in repeats]
    rows = outcomes(shuffled, TREATED, when)
    assert rows == outcomes(RECORDS, TREATED, when)
    abandoned = {r["checkout"] for r in RECORDS if r["type"] == "plan" and r["abandoned_at"] <= iso}
    assert [r.checkout for r in rows] == sorted(abandoned, key=[c["checkout"] for c in CARTS].index)
    assert reconcile(shuffled, rows, when) == []


def test_the_run_tells_plan_records_apart_from_recoveries():
    """``cartbands run`` drains the recoveries topic by record identity: a plan by its cart and
    cycle, a recovery by its order, so plans of one shopper are not taken for repeats."""
    from cartbands.runner import is_plan, is_recovery, recovery_id

    plans = [r for r in RECORDS if r["type"] == "plan"]
    recoveries = [r for r in RECORDS if r["type"] == "recovery"]
    same_shopper = [{**p, "shopper": "pipe:one"} for p in plans]
    assert len({recovery_id(p) for p in same_shopper}) == len(plans)
    assert len({recovery_id(r) for r in [*recoveries, *recoveries]}) == len(recoveries)
    assert all(is_plan(p) and not is_recovery(p) for p in plans)
    assert all(is_recovery(r) and not is_plan(r) for r in recoveries)
