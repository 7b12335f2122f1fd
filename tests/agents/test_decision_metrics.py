"""What stage B decides reaches the Prometheus counters, labelled as the dashboards expect."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import REGISTRY

from agents import decision_metrics
from config.policyfile import DEFAULT_POLICY, load_policy
from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery.checkout_stage import CheckoutStage
from recovery.checkouts import Effect
from recovery.ids import checkout_key
from recovery.shopper_records import shopper_event
from recovery.shopper_state import EndedPlan, ShopperState, StoredProfile
from tests.pipeline.helpers import T0, cart, order, wire


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def abandoned_event(record: dict, policy) -> dict:
    """What stage A sends stage B once ``record``'s checkout has been idle long enough."""
    key = checkout_key(record["store"], record["checkout"])
    state, _ = stage_a.apply_event(None, record, 0, policy)
    _, effects = stage_a.apply_tick(state, key, T0 + 86400)
    (effect,) = [e for e in effects if e.kind == "abandoned"]
    assert effect.record is not None
    return wire(effect.record)


def test_a_plan_an_emission_and_a_recovery_are_counted() -> None:
    policy = load_policy(DEFAULT_POLICY).for_store("meter")
    event = abandoned_event(cart("m-1", "310", store="meter", customer="ann"), policy)
    shopper = event["shopper"]
    state, out = stage_b.apply_abandoned(None, shopper, shopper_event(event), 0, policy)
    assert out.planned, out.counts
    plan = out.planned[0]
    group = "holdout" if plan.holdout else "treated"
    before = value(
        "cartbands_carts_abandoned_total", store="meter", band="high", segment=plan.segment,
        group=group,
    )  # fmt: skip
    decision_metrics.shopper_outputs(out, policy.band_names)
    after = value(
        "cartbands_carts_abandoned_total", store="meter", band="high", segment=plan.segment,
        group=group,
    )  # fmt: skip
    assert after - before == 1

    emitted_before = value("cartbands_touches_emitted_total", channel="email", band="high")
    state, out = stage_b.apply_due(state, shopper, T0 + 3 * 3600, policy, b"secret")
    decision_metrics.shopper_outputs(out, policy.band_names)
    sent = [e for e in out.touches if e.touch.channel == "email"]
    emitted = value("cartbands_touches_emitted_total", channel="email", band="high")
    assert emitted - emitted_before == len(sent)

    money = {"store": "meter", "currency": "USD", "group": group, "band": "high"}
    revenue_before = value("cartbands_recovered_revenue_total", **money)
    state, out = stage_b.apply_converted(
        state,
        shopper,
        shopper_event(
            {
                **order("m-1", "310", T0 + 5 * 3600, store="meter", customer="ann"),
                "type": "cart_converted",
            }
        ),
        0,
        policy,
    )
    assert out.recoveries
    decision_metrics.shopper_outputs(out, policy.band_names)
    revenue = value("cartbands_recovered_revenue_total", **money)
    assert revenue - revenue_before == 310.0
    record = out.recoveries[0]
    assert Decimal(record["margin"]) == Decimal("310") * policy.margin.gross_margin


def test_discount_spend_counts_what_the_codes_redeemed_not_what_was_issued() -> None:
    policy = load_policy(DEFAULT_POLICY).for_store("meter-redeem")
    last = EndedPlan(ck="c1", cy=1, end=T0, why="completed", band="high", seg="new",
                     sent=[3], codes=["ABC"], cc={"ABC": "37.20"})  # fmt: skip
    state = ShopperState(pt=0, seq=1, pr=StoredProfile(), lp=last)
    record = {
        **order("c1", "250.00", T0 + 3600, store="meter-redeem"),
        "type": "cart_converted",
        "discounts": [{"code": "abc", "amount": "24.00"}, {"code": "VIP5", "amount": "5.00"}],
    }
    labels = {"store": "meter-redeem", "currency": "USD", "band": "high"}
    before = value("cartbands_discount_spend_total", **labels)
    _, out = stage_b.apply_converted(state, "meter-redeem:sh", shopper_event(record), 0, policy)
    decision_metrics.shopper_outputs(out, policy.band_names)
    assert value("cartbands_discount_spend_total", **labels) - before == 24.0


def test_duplicates_and_stale_updates_are_counted_as_rejections() -> None:
    before = value("cartbands_events_rejected_total", reason="duplicate")
    stale_before = value("cartbands_events_rejected_total", reason="stale")
    decision_metrics.cart_effects([Effect("duplicate"), Effect("stale"), Effect("abandoned")])
    assert value("cartbands_events_rejected_total", reason="duplicate") - before == 1
    assert value("cartbands_events_rejected_total", reason="stale") - stale_before == 1


def test_refused_events_are_dead_lettered_by_cause() -> None:
    before = value("cartbands_dlq_records_total", dlq="cart_events", reason="total")
    internal = value("cartbands_dlq_records_total", dlq="cart_events", reason="internal_error")
    decision_metrics.cart_event_refused("total: not a decimal amount", malformed=True)
    decision_metrics.cart_event_refused("internal error: KeyError: 'x'", malformed=False)
    assert value("cartbands_dlq_records_total", dlq="cart_events", reason="total") - before == 1
    after = value("cartbands_dlq_records_total", dlq="cart_events", reason="internal_error")
    assert after - internal == 1


def test_events_read_are_counted_per_window_by_platform_and_type() -> None:
    def events(platform: str, kind: str) -> float:
        return value("cartbands_events_total", platform=platform, type=kind)

    shopify = events("shopify", "cart_updated")
    generic = events("generic", "cart_completed")
    unknown = events("other", "other")
    stage = CheckoutStage(load_policy(DEFAULT_POLICY), 1, {})
    records = [
        {"platform": "shopify", "type": "cart_updated"},
        {"platform": "shopify", "type": "cart_updated"},
        {"type": "cart_completed"},  # no platform: a generic event
        {"platform": ["not", "text"], "type": {"x": 1}},
        "not an object",
    ]
    stage.fold(0, records)
    assert events("shopify", "cart_updated") == shopify  # nothing reaches Prometheus yet
    decision_metrics.events_read(stage.take().events_read)
    assert events("shopify", "cart_updated") - shopify == 2
    assert events("generic", "cart_completed") - generic == 1
    assert events("other", "other") - unknown == 2


def test_a_band_the_store_does_not_have_is_counted_as_other() -> None:
    """A recovery written under an older policy (its band since renamed) keeps the label
    bounded: the store's band names, else ``other``."""
    policy = load_policy(DEFAULT_POLICY).for_store("meter-renamed")
    last = EndedPlan(ck="c2", cy=1, end=T0, why="completed", band="platinum", seg="new", sent=[1])
    state = ShopperState(pt=0, seq=1, pr=StoredProfile(), lp=last)
    record = {**order("c2", "80.00", T0 + 3600, store="meter-renamed"), "type": "cart_converted"}
    labels = {"store": "meter-renamed", "currency": "USD", "group": "treated"}
    _, out = stage_b.apply_converted(state, "meter-renamed:sh", shopper_event(record), 0, policy)
    decision_metrics.shopper_outputs(out, policy.band_names)
    assert value("cartbands_recovered_revenue_total", **labels, band="other") == 80.0
    assert value("cartbands_recovered_revenue_total", **labels, band="platinum") == 0.0


def test_unreadable_stored_rows_are_counted_apart_from_refused_events() -> None:
    labels = {"dlq": "cart_events", "reason": "stored_state"}
    rejected = value("cartbands_events_rejected_total", reason="malformed")
    before = value("cartbands_dlq_records_total", **labels)
    decision_metrics.stored_rows_unreadable(2)
    assert value("cartbands_dlq_records_total", **labels) - before == 2
    assert value("cartbands_events_rejected_total", reason="malformed") == rejected
