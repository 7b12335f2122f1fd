"""Stage B's profile takes the platform's customer history into account for the segment."""

from __future__ import annotations

import pytest
import yaml

from config.policyfile import DEFAULT_POLICY, load_policy
from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery.ids import checkout_key
from recovery.policyset import PolicySet, parse_policy
from recovery.shopper_profile import profile_of
from recovery.shopper_records import shopper_event
from tests.pipeline.helpers import T0, cart, order

DAY = 86400.0


@pytest.fixture(scope="module")
def default_policies() -> PolicySet:
    return load_policy()


def abandon(state, record: dict, policies: PolicySet):
    policy = policies.for_store(record["store"])
    key = checkout_key(record["store"], record["checkout"])
    checkout, _ = stage_a.apply_event(None, record, 0, policy)
    _, effects = stage_a.apply_tick(checkout, key, epoch_of(record) + DAY)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.record is not None and effect.key is not None
    new, out = stage_b.apply_abandoned(state, effect.key, effect.record, 0, policy)
    return effect.key, new, out


def epoch_of(record: dict) -> float:
    return stage_a.epoch(record["occurred_at"], "occurred_at")


def with_history(record: dict, orders: int, spent: str) -> dict:
    return {**record, "customer": {"orders_count": orders, "total_spent": spent}}


def test_platform_history_makes_a_repeat_vip(default_policies: PolicySet) -> None:
    record = with_history(cart("p-1", "310", store="hist", customer="vera"), 6, "2400.00")
    _, _, out = abandon(None, record, default_policies)
    assert [plan.segment for plan in out.planned] == ["repeat_vip"]


def test_without_history_the_same_cart_is_new(default_policies: PolicySet) -> None:
    _, _, out = abandon(None, cart("p-2", "310", store="hist", customer="nico"), default_policies)
    assert [plan.segment for plan in out.planned] == ["new"]


def test_history_and_stream_orders_are_not_added_twice(default_policies: PolicySet) -> None:
    policy = default_policies.for_store("hist")
    first = cart("p-3", "120", store="hist", customer="olga")
    shopper, state, _ = abandon(None, first, default_policies)
    state, _ = stage_b.apply_converted(
        state,
        shopper,
        shopper_event(
            {
                **order("p-3", "120", T0 + 2 * 3600, store="hist", customer="olga"),
                "type": "cart_converted",
            }
        ),
        0,
        policy,
    )
    assert state.pr.oc == 1
    later = with_history(cart("p-4", "80", T0 + 5 * DAY, store="hist", customer="olga"), 1, "120")
    _, state, _ = abandon(state, later, default_policies)
    assert state.pr.oc == 1 and state.pr.ltv == "120"


def test_an_sms_stop_ends_the_plan_and_suppresses_the_number(default_policies: PolicySet) -> None:
    policy = default_policies.for_store("hist")
    shopper, state, _ = abandon(
        None, cart("p-5", "310", store="hist", customer="pia"), default_policies
    )
    assert state.pl is not None
    stop = {
        "type": "consent_changed",
        "store": "hist",
        "channel": "sms",
        "granted": False,
        "source": "STOP",
        "phone": "(212) 555-0100",
        "occurred_at": "2026-11-02T18:00:00Z",
    }
    state, out = stage_b.apply_consent(state, shopper, shopper_event(stop), 0, policy)
    assert state.pl is None and state.lp.why.startswith("unsubscribe")
    assert profile_of(state).suppressed_numbers == frozenset({"+12125550100"})
    assert state.nd is None and not out.touches


def test_the_newest_rule_replaces_a_more_valuable_active_cart() -> None:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["caps"]["on_new_cart"] = "newest"
    policies = parse_policy(data, "newest.yaml")
    _, state, _ = abandon(None, cart("p-6", "900", store="hist", customer="rui"), policies)
    later = cart("p-7", "60", T0 + 3 * 3600, store="hist", customer="rui")
    _, state, _ = abandon(state, later, policies)
    assert state.pl.ck == "p-7"
    kept_policies = load_policy()
    _, state, _ = abandon(None, cart("p-8", "900", store="hist", customer="sol"), kept_policies)
    later = cart("p-9", "60", T0 + 3 * 3600, store="hist", customer="sol")
    _, state, _ = abandon(state, later, kept_policies)
    assert state.pl.ck == "p-8"


@pytest.mark.parametrize(("window", "credited"), [("7d", True), ("1d", False)])
def test_an_order_after_the_sequence_is_credited_within_the_attribution_window(
    window: str, credited: bool
) -> None:
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    data["defaults"]["attribution_window"] = window
    for band in data["defaults"]["bands"]:
        band["holdout"] = 0
    policies = parse_policy(data, "attribution.yaml")
    policy = policies.for_store("hist")
    shopper, state, _ = abandon(None, cart("p-10", "120", store="hist", customer="tia"), policies)
    state, _ = stage_b.apply_due(state, shopper, T0 + 6 * DAY, policy, b"secret")
    assert state.pl is None and state.lp.why.startswith("completed")
    ended = state.lp.end
    other = {
        **order("p-11", "95", ended + 3 * DAY, store="hist", customer="tia"),
        "type": "cart_converted",
    }
    _, out = stage_b.apply_converted(state, shopper, shopper_event(other), 0, policy)
    assert bool(out.recoveries) is credited


def test_an_order_sent_again_is_counted_once(default_policies: PolicySet) -> None:
    """Stage A sends at least once: a cart_converted it sends again after a crash changes
    neither the profile nor the recoveries."""
    policy = default_policies.for_store("hist")
    shopper, state, _ = abandon(
        None, cart("p-20", "310", store="hist", customer="uma"), default_policies
    )
    placed = order("p-20", "310", T0 + 2 * DAY, store="hist", customer="uma")
    converted = stage_a.apply_event(None, placed, 0, policy)[1][0].record
    assert converted is not None
    once, out = stage_b.apply_converted(state, shopper, converted, 0, policy)
    assert len(out.recoveries) == 1 and once.pr.oc == 1
    again, out = stage_b.apply_converted(once, shopper, converted, 0, policy)
    assert again is once and out.recoveries == []
    other = order("p-21", "80", T0 + 3 * DAY, store="hist", customer="uma")
    later = stage_a.apply_event(None, other, 0, policy)[1][0].record
    after, _ = stage_b.apply_converted(again, shopper, later, 0, policy)
    assert after.pr.oc == 2 and after.pr.ltv == "390"
