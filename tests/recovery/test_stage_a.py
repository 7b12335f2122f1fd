"""Stage A transitions: a checkout's life as pure functions."""

from __future__ import annotations

import pytest

from config.policyfile import load_policy
from recovery import checkouts as a
from schemas.cart_events import cart_dict
from schemas.codec import dumps
from tests.pipeline.helpers import T0, cart, order, wire

POLICY = load_policy().defaults
HOUR = 3600.0


def fold(*events):
    state = None
    effects = []
    for event in events:
        state, found = a.apply_event(state, event, 0, POLICY)
        effects.extend(found)
    return state, effects


def test_idle_checkout_is_abandoned_after_the_window():
    state, _ = fold(cart("c1", "120"))
    assert a.next_due(state) == T0 + HOUR
    same, effects = a.apply_tick(state, "pipe:c1", T0 + HOUR - 1)
    assert same is state and effects == []
    new, effects = a.apply_tick(state, "pipe:c1", T0 + HOUR)
    assert new.st == "abandoned" and new.cy == 1
    (effect,) = effects
    assert effect.kind == "abandoned"
    assert effect.record.abandoned_at == "2026-11-02T16:00:00Z"
    assert effect.key == state.sh and effect.key.startswith("pipe:")


def test_abandoned_checkout_keeps_only_what_an_order_falls_back_on():
    state, _ = fold(cart("c1", "120"))
    whole, size = cart_dict(state.c), len(dumps(state))
    new, (effect,) = a.apply_tick(state, "pipe:c1", T0 + HOUR)
    assert effect.record.cart == whole  # stage B gets the whole cart
    assert set(cart_dict(new.c)) == {"currency", "total"}
    assert len(dumps(new)) < size
    bare = {**order("c1", "120", T0 + 2 * HOUR), "total": None}
    bare.pop("contact")
    done, effects = a.apply_event(new, bare, 0, POLICY)
    (converted,) = [e for e in effects if e.kind == "converted"]
    assert converted.record.total == "120" and converted.record.currency == "USD"
    assert "contact" not in wire(converted.record) and converted.key == state.sh
    assert done.st == "converted"


def test_activity_pushes_the_deadline():
    state, _ = fold(cart("c1", "120"), cart("c1", "130", T0 + 1800))
    assert a.next_due(state) == T0 + 1800 + HOUR
    assert state.c.total == "130"


def test_duplicate_delivery_is_dropped():
    first = cart("c1", "120", event_id="d-1")
    state, _ = fold(first)
    again, effects = a.apply_event(state, first, 0, POLICY)
    assert [e.kind for e in effects] == ["duplicate"]
    assert again is state


def test_stale_update_is_dropped():
    state, _ = fold(cart("c1", "130", T0 + 60))
    new, effects = a.apply_event(state, cart("c1", "120", T0), 0, POLICY)
    assert [e.kind for e in effects] == ["stale"]
    assert new.c.total == "130"


def test_order_converts_and_nothing_is_abandoned():
    state, effects = fold(cart("c1", "120"), order("c1", "120", T0 + 600))
    assert state.st == "converted"
    assert [e.kind for e in effects] == ["converted"]
    assert a.next_due(state) == state.fa
    later, effects = a.apply_tick(state, "pipe:c1", T0 + 2 * HOUR)
    assert later.st == "converted" and effects == []


def test_update_after_abandonment_reopens_and_a_new_cycle_follows():
    state, _ = fold(cart("c1", "120"))
    state, _ = a.apply_tick(state, "pipe:c1", T0 + HOUR)
    state, effects = a.apply_event(state, cart("c1", "150", T0 + 2 * HOUR), 0, POLICY)
    assert [e.kind for e in effects] == ["reopened"] and state.st == "open"
    state, effects = a.apply_tick(state, "pipe:c1", T0 + 3 * HOUR)
    assert effects[0].record.cycle == 2


def test_unreachable_checkout_is_never_abandoned():
    event = cart("c1", "120")
    event["contact"] = {}
    state, _ = fold(event)
    assert state.dl is None
    assert a.next_due(state) == state.fa


def test_checkout_is_forgotten_after_retention():
    state, _ = fold(cart("c1", "120"))
    state, _ = a.apply_tick(state, "pipe:c1", T0 + HOUR)
    gone, effects = a.apply_tick(state, "pipe:c1", T0 + 31 * 86400)
    assert gone is None and [e.kind for e in effects] == ["forgotten"]


def test_emptied_cart_after_abandonment_ends_the_plan():
    state, _ = fold(cart("c1", "120"))
    state, _ = a.apply_tick(state, "pipe:c1", T0 + HOUR)
    empty = cart("c1", "0", T0 + 2 * HOUR)
    empty["line_items"] = []
    state, effects = a.apply_event(state, empty, 0, POLICY)
    assert state.st == "emptied" and [e.kind for e in effects] == ["emptied"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("store"), "store"),
        (lambda e: e.update(total=1.5), "total"),
        (lambda e: e.update(occurred_at="yesterday"), "occurred_at"),
        (lambda e: e.update(currency=None), "currency"),
        (lambda e: e.update(type="cart_exploded"), "type"),
    ],
)
def test_bad_events_name_the_field(mutate, field):
    event = cart("c1", "120")
    mutate(event)
    with pytest.raises(a.BadEvent, match=field):
        a.apply_event(None, event, 0, POLICY)


def test_state_stays_small():
    event = cart("c1", "120")
    event["line_items"] = [
        {"title": f"item {i}", "quantity": 1, "price": "1.00", "product_id": str(i)}
        for i in range(50)
    ]
    state, _ = fold(event)
    from schemas.codec import dumps

    assert len(state.c.line_items) == a.MAX_ITEMS
    assert len(dumps(fold(cart("c2", "120"))[0])) <= 1024
