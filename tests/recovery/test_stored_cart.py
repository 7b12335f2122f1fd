"""The stored form of a cart: exact round trips, old wire-form states, and its size."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from config.policyfile import load_policy
from recovery import checkouts as stage_a
from recovery import shoppers as stage_b
from recovery import stored_cart as sc
from recovery.commands import touch_command
from recovery.ids import checkout_key
from recovery.shopper_state import ShopperState
from schemas.codec import dumps
from tests.pipeline.helpers import T0, cart


def reference_snapshot(event: dict[str, Any], drop: frozenset[str]) -> dict[str, Any]:
    """What a stored cart must unpack to, written out plainly: the event minus nulls and the
    dropped fields, line items capped (their nulls removed), the contact without nulls or
    ``false`` values; everything else as it came."""
    kept = {k: v for k, v in event.items() if v is not None and k not in drop}
    items = kept.get("line_items")
    if isinstance(items, list):
        kept["line_items"] = [
            {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
            for item in items[: sc.MAX_ITEMS]
        ]
    contact = kept.get("contact")
    if isinstance(contact, dict):
        kept["contact"] = {k: v for k, v in contact.items() if v is not None and v is not False}
    return kept


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.text(max_size=6), st.just("12.50")
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def record_of(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from(fields) | st.sampled_from(["x", "i", "cu", "extra"])
    return st.dictionaries(names, scalars | json_values, max_size=len(fields) + 1)


def mostly_known(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(fields), scalars, max_size=len(fields))


part = {
    "line_items": st.lists(
        mostly_known(sc.ITEM_FIELDS) | record_of(sc.ITEM_FIELDS) | json_values, max_size=12
    )
    | json_values,
    "contact": mostly_known(sc.CONTACT_FIELDS) | record_of(sc.CONTACT_FIELDS) | json_values,
    "shipping_address": mostly_known(sc.ADDRESS_FIELDS) | json_values,
    "billing_address": mostly_known(sc.ADDRESS_FIELDS) | json_values,
    "customer": mostly_known(sc.HISTORY_FIELDS) | json_values,
}
events = st.fixed_dictionaries(
    {},
    optional={
        **{name: scalars | json_values for name in sc.SCALARS},
        **part,
        **{name: scalars for name in sc.DELIVERY_FIELDS},
        "x": json_values,
        "i": json_values,
        "discount_codes": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(events)
def test_a_stored_cart_unpacks_to_the_snapshot_of_its_event(event: dict[str, Any]) -> None:
    stored = sc.pack(event)
    assert sc.is_packed(stored)
    assert sc.unpack(stored) == reference_snapshot(event, sc.DELIVERY_FIELDS)


@settings(max_examples=200, deadline=None)
@given(events, st.frozensets(st.sampled_from(["store", "checkout", "customer", "contact"])))
def test_dropped_fields_are_not_stored(event: dict[str, Any], drop: frozenset[str]) -> None:
    assert sc.unpack(sc.pack(event, drop=drop)) == reference_snapshot(event, drop)


def test_rows_keep_the_field_order_states_were_stored_with() -> None:
    """Stored rows are read by position: the cart schema's fields may be appended to, never
    reordered (recovery.stored_cart takes the order from schemas.cart_events)."""
    assert sc.ITEM_FIELDS[:7] == (
        "title", "quantity", "price", "product_id", "variant_id", "sku", "cost",
    )  # fmt: skip
    assert sc.CONTACT_FIELDS[:8] == (
        "email", "phone", "sms_phone", "customer_id", "first_name", "email_consent",
        "sms_consent", "locale",
    )  # fmt: skip
    assert sc.ADDRESS_FIELDS[:3] == ("country_code", "province_code", "zip")
    assert sc.HISTORY_FIELDS[:2] == ("orders_count", "total_spent")


def test_a_wire_form_cart_from_an_older_state_reads_as_it_is() -> None:
    wire = reference_snapshot(cart("c1", "120"), sc.DELIVERY_FIELDS)
    assert not sc.is_packed(wire)
    assert sc.unpack(wire) is wire
    assert sc.unpack(sc.pack(wire)) == wire


def test_the_stored_form_is_much_smaller_for_a_typical_cart() -> None:
    event = cart("c1", "120")
    event["line_items"] = [
        {
            "title": f"Espresso machine {n}",
            "quantity": 1,
            "price": "44.25",
            "product_id": f"prod-{n:03}",
            "variant_id": f"var-{n:03}-1",
            "sku": f"SKU-{n:03}-1",
        }
        for n in range(4)
    ]
    wire = reference_snapshot(event, sc.DELIVERY_FIELDS)
    stored = sc.pack(event)
    assert "x" not in stored  # every part of a well-formed cart fits a row
    assert len(dumps(stored)) < 0.75 * len(dumps(wire))


def test_a_part_a_row_cannot_hold_is_kept_verbatim() -> None:
    event = {
        "currency": "USD",
        "total": "10",
        "line_items": [{"title": "a", "quantity": 1, "price": "10", "colour": "red"}],
        "shipping_address": {"country_code": "US", "zip": None},
    }
    stored = sc.pack(event)
    assert stored["x"] == {
        "line_items": [{"title": "a", "quantity": 1, "price": "10", "colour": "red"}],
        "shipping_address": {"country_code": "US", "zip": None},
    }
    assert sc.unpack(stored) == event


def test_a_shopper_stored_before_the_compact_form_gets_the_same_touches() -> None:
    """A plan whose cart an earlier version stored in wire form is re-derived the same."""
    policy = load_policy().for_store("pipe")
    event = cart("c1", "420")
    key = checkout_key("pipe", "c1")
    checkout, _ = stage_a.apply_event(None, event, 0, policy)
    _, (effect,) = stage_a.apply_tick(checkout, key, T0 + 86400)
    assert effect.key is not None and effect.record is not None
    state, _ = stage_b.apply_abandoned(None, effect.key, effect.record, 0, policy)
    assert sc.is_packed(state.pl.c)
    assert state.pl is not None
    older = msgspec.structs.replace(
        state, pl=msgspec.structs.replace(state.pl, c=sc.unpack(state.pl.c))
    )
    assert older.pl is not None and not sc.is_packed(older.pl.c)

    def touches(shopper: ShopperState) -> list[dict[str, Any]]:
        _, out = stage_b.apply_due(shopper, effect.key, T0 + 30 * 86400, policy, b"secret")
        return [touch_command(emission) for emission in out.touches]

    sent = touches(state)
    assert len(sent) >= 3  # a high cart: several touches over the days
    assert touches(older) == sent
