"""Social proof counts: the pure fold of orders per store and product, and stage A's items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from config.policyfile import load_policy
from recovery import checkouts as a
from recovery.policy import SocialProof
from recovery.social_proof import (
    DAY,
    Order,
    ProductOrders,
    Proof,
    best_seller,
    day_of,
    order_of,
    product_key,
)
from tests.pipeline.helpers import T0, cart, order, wire

POLICY = load_policy().defaults
TODAY = day_of(datetime(2026, 11, 2, 16, 0, tzinfo=UTC))
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def converted(store: str, checkout: str, at: str, *products: str) -> dict:
    return {"type": "cart_converted", "store": store, "checkout": checkout, "occurred_at": at,
            "items": [{"product_id": p, "title": f"Product {p}"} for p in products]}  # fmt: skip


# An order's content follows from its identity: a copy stage A sends again is the same record.
STORES = ("acme", "bolt")
PRODUCTS = tuple(f"p:{n}" for n in range(6))


@st.composite
def orders(draw: st.DrawFn, max_size: int = 60) -> list[Order]:
    catalogue = {
        (store, f"chk-{n}"): Order(
            store,
            f"chk-{n}",
            TODAY - draw(st.integers(0, 12)),
            frozenset(draw(st.sets(st.sampled_from(PRODUCTS), min_size=1, max_size=3))),
        )
        for store in STORES
        for n in range(draw(st.integers(1, 15)))
    }
    picks = st.sampled_from(sorted(catalogue))
    return [catalogue[key] for key in draw(st.lists(picks, max_size=max_size))]


def brute(seen: list[Order], store: str, product: str, day: int, window: int) -> int:
    distinct = {o.checkout: o for o in seen if o.store == store}
    return sum(
        1 for o in distinct.values() if day - window < o.day <= day and product in o.products
    )


@FAST
@given(orders(), st.integers(1, 7), st.integers(0, 3), st.integers(1, 7))
def test_counts_equal_a_brute_force_count_over_the_window(seen, keep, ahead, window):
    """Within the bounds the fold is exact, whatever order the records arrive in, copies
    included: the distinct orders of that store on the query day and the window - 1 before."""
    window = min(window, keep)
    counts = ProductOrders(keep_days=keep)
    for each in seen:
        counts.add(each)
    day = TODAY + ahead  # on or after the newest order, as a sender asks
    for store in STORES:
        for product in PRODUCTS:
            assert counts.count(store, product, day, window) == brute(
                seen, store, product, day, window
            )


@FAST
@example([Order("acme", "a", TODAY - 1, frozenset(PRODUCTS[:1])),
          Order("acme", "b", TODAY, frozenset(PRODUCTS[:1]))], 1, 1, 1, 1, 0, 1)  # fmt: skip
@given(
    orders(max_size=120),
    st.integers(1, 7),
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(-12, 3),
    st.integers(1, 7),
)
def test_bounds_hold_and_a_count_is_never_more_than_the_truth(
    seen, keep, max_stores, max_products, max_orders, offset, window
):
    counts = ProductOrders(
        keep_days=keep, max_stores=max_stores, max_products=max_products, max_orders=max_orders
    )
    for each in seen:
        counts.add(each)
        assert len(counts.stores()) <= max_stores
        for store in counts.stores():
            days = counts.days_of(store)
            assert days and days[-1] - days[0] < keep
        assert counts.entries() <= max_stores * keep * (max_orders + max_products)
    day = TODAY + offset
    for store in STORES:
        for product in PRODUCTS:
            assert counts.count(store, product, day, window) <= brute(
                seen, store, product, day, window
            )


def test_a_copy_counts_once_and_stores_never_mix():
    counts = ProductOrders()
    records = [
        converted("acme", "chk-1", "2026-11-02T10:00:00Z", "shirt", "mug"),
        converted("acme", "chk-1", "2026-11-02T10:00:00Z", "shirt", "mug"),  # sent again
        converted("acme", "chk-2", "2026-11-01T10:00:00Z", "shirt"),
        converted("bolt", "chk-1", "2026-11-02T11:00:00Z", "shirt"),
    ]
    assert [counts.apply(r) for r in records] == [True, False, True, True]
    assert counts.count("acme", "p:shirt", TODAY, 7) == 2
    assert counts.count("acme", "p:mug", TODAY, 7) == 1
    assert counts.count("bolt", "p:shirt", TODAY, 7) == 1
    assert counts.count("acme", "p:shirt", TODAY, 1) == 1  # today only
    assert counts.count("cold", "p:shirt", TODAY, 7) == 0


def test_old_days_are_dropped_and_late_orders_ignored():
    counts = ProductOrders(keep_days=3)
    assert counts.apply(converted("acme", "c1", "2026-10-28T10:00:00Z", "shirt"))
    assert counts.apply(converted("acme", "c2", "2026-11-02T10:00:00Z", "shirt"))
    assert counts.days_of("acme") == [TODAY]
    assert not counts.apply(converted("acme", "c3", "2026-10-30T23:59:59Z", "shirt"))
    assert counts.apply(converted("acme", "c4", "2026-10-31T00:00:00Z", "shirt"))
    assert counts.count("acme", "p:shirt", TODAY, 3) == 2
    assert counts.days_of("acme") == [TODAY - 2, TODAY]
    assert counts.apply(converted("acme", "c5", "2026-11-03T00:00:00Z", "shirt"))
    assert counts.days_of("acme") == [TODAY, TODAY + 1]
    assert counts.count("acme", "p:shirt", TODAY + 1, 3) == 2
    assert counts.count("acme", "p:shirt", TODAY + 4, 3) == 0


def test_an_order_from_the_future_is_ignored_when_today_is_known():
    counts = ProductOrders(keep_days=7)
    assert not counts.apply(converted("acme", "c9", "2099-01-01T00:00:00Z", "shirt"), TODAY)
    assert counts.apply(converted("acme", "c1", "2026-11-02T10:00:00Z", "shirt"), TODAY)
    assert counts.apply(converted("acme", "c2", "2026-11-03T01:00:00Z", "shirt"), TODAY)
    assert counts.count("acme", "p:shirt", TODAY + 1, 7) == 2


def test_a_store_redaction_forgets_its_counts():
    counts = ProductOrders()
    counts.apply(converted("acme", "c1", "2026-11-02T10:00:00Z", "shirt"))
    counts.apply(converted("bolt", "c1", "2026-11-02T10:00:00Z", "shirt"))
    redaction = {"type": "store_redacted", "store": "acme", "occurred_at": "2026-11-02T12:00:00Z"}
    assert counts.apply(redaction)
    assert counts.count("acme", "p:shirt", TODAY, 7) == 0
    assert counts.count("bolt", "p:shirt", TODAY, 7) == 1
    assert not counts.apply(redaction)


def test_the_least_recently_ordered_store_goes_first():
    counts = ProductOrders(max_stores=2)
    for store in ("a", "b", "a", "c"):
        counts.apply(converted(store, f"chk-{store}-{len(counts.stores())}",
                               "2026-11-02T10:00:00Z", "shirt"))  # fmt: skip
    assert counts.stores() == ["a", "c"]


def test_a_full_day_evicts_its_least_ordered_product():
    counts = ProductOrders(max_products=2)
    counts.apply(converted("acme", "c1", "2026-11-02T10:00:00Z", "shirt", "mug"))
    counts.apply(converted("acme", "c2", "2026-11-02T11:00:00Z", "shirt"))
    counts.apply(converted("acme", "c3", "2026-11-02T12:00:00Z", "hat"))
    assert counts.count("acme", "p:shirt", TODAY, 7) == 2
    assert counts.count("acme", "p:mug", TODAY, 7) == 0
    assert counts.count("acme", "p:hat", TODAY, 7) == 1


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"type": "cart_abandoned", "store": "acme"},
        {"type": "cart_converted", "store": "acme", "checkout": "c1",
         "occurred_at": "2026-11-02T10:00:00Z"},  # no items: written before they were sent
        {**converted("acme", "c1", "2026-11-02T10:00:00"), "items": [{"title": "x"}]},  # naive
        converted("acme", "c1", "yesterday", "shirt"),
        converted("", "c1", "2026-11-02T10:00:00Z", "shirt"),
        {**converted("acme", "c1", "2026-11-02T10:00:00Z"), "items": [{"price": "3"}, "x"]},
        {**converted("acme", "c1", "2026-11-02T10:00:00Z"), "items": "shirt"},
    ],
)  # fmt: skip
def test_records_that_report_no_countable_order_are_ignored(record):
    counts = ProductOrders()
    assert order_of(record) is None
    assert not counts.apply(record)
    assert counts.entries() == 0


def test_product_key_prefers_the_id_and_falls_back_to_the_title():
    assert product_key({"product_id": " 42 ", "title": "Linen Shirt"}) == "p:42"
    assert product_key({"product_id": 42}) == "p:42"
    assert product_key({"title": "  Linen   SHIRT "}) == "t:linen shirt"
    assert product_key({"product_id": "", "title": ""}) is None
    assert product_key({"product_id": True}) is None


def test_best_seller_names_the_carts_most_ordered_item_from_the_threshold_on():
    counts = ProductOrders()
    for n in range(12):
        counts.apply(converted("acme", f"s{n}", "2026-11-01T10:00:00Z", "shirt"))
    for n in range(15):
        counts.apply(converted("acme", f"m{n}", "2026-10-30T10:00:00Z", "mug"))
    items = [
        {"product_id": "hat", "title": "Hat"},
        {"product_id": "shirt", "title": "Linen  Shirt"},
        {"product_id": "mug", "title": "Mug"},
    ]
    assert best_seller(counts, "acme", items, TODAY, 7, 10) == Proof("Mug", 15, 7)
    assert best_seller(counts, "acme", items, TODAY, 3, 10) == Proof("Linen Shirt", 12, 3)
    assert best_seller(counts, "acme", items, TODAY, 7, 16) is None  # below: no claim
    assert best_seller(counts, "bolt", items, TODAY, 7, 1) is None  # another store's orders
    tied = [{"product_id": "mug", "title": "Mug"}, {"product_id": "mug", "title": "Cup"}]
    assert best_seller(counts, "acme", tied, TODAY, 7, 1) == Proof("Mug", 15, 7)


def test_stage_a_sends_the_ordered_items_with_a_conversion():
    state, _ = a.apply_event(None, cart("c1", "120", T0), 0, POLICY)
    state, effects = a.apply_event(state, order("c1", "120", T0 + 600), 0, POLICY)
    (record,) = [wire(e.record) for e in effects if e.kind == "converted"]
    assert record is not None and record["items"] == [{"title": "thing"}]
    completed = cart("c2", "80", T0)
    completed["line_items"] = [
        {"title": "Linen Shirt", "quantity": 2, "price": "40", "product_id": "42"},
        {"title": "", "quantity": 1, "price": "0"},
    ]
    completed["completed_at"] = completed["occurred_at"]
    _, effects = a.apply_event(None, completed, 0, POLICY)
    (record,) = [wire(e.record) for e in effects if e.kind == "converted"]
    assert record is not None and record["items"] == [{"product_id": "42", "title": "Linen Shirt"}]
    found = order_of(record)
    assert found is not None and found.products == frozenset({"p:42"})
    assert found.day == int(T0 // DAY)


def test_policy_social_proof_defaults_and_checks():
    assert POLICY.social_proof == SocialProof(window=timedelta(days=7), min_orders=10)
    assert SocialProof.model_validate({"window": "2d", "min_orders": 3}).window.days == 2
    for bad in ({"window": "36h"}, {"window": "0d"}, {"window": "31d"}, {"min_orders": 0}):
        with pytest.raises(ValidationError):
            SocialProof.model_validate(bad)
