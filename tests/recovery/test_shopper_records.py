"""recovery.shopper_records: stage B's records read once into their structs, and what a
transition reads of them, checked."""

from __future__ import annotations

from typing import Any

import pytest

from recovery.checkouts import BadEvent
from recovery.shopper_records import shopper_event, used_discounts
from recovery.shoppers import CART_LEFT
from schemas.shopper_events import (
    RECORD_TYPES,
    CartAbandoned,
    CartConverted,
    ConsentChanged,
    ShopperRedacted,
    as_sent,
)

MINIMAL: dict[str, dict[str, Any]] = {
    "cart_abandoned": {"checkout": "c1"},
    "cart_converted": {"checkout": "c1"},
    "cart_reopened": {"checkout": "c1"},
    "cart_emptied": {"checkout": "c1"},
    "consent_changed": {},
    "shopper_redacted": {},
}


def test_every_record_type_is_read_into_its_struct_and_has_a_transition() -> None:
    assert set(MINIMAL) == RECORD_TYPES
    transitions = {CartAbandoned, CartConverted, ConsentChanged, ShopperRedacted}
    for kind, fields in MINIMAL.items():
        event = shopper_event({"type": kind, "shopper": "s:1", **fields})
        assert event.kind == kind and event.shopper == "s:1"
        assert type(event) in transitions or kind in CART_LEFT
        assert as_sent(event)["type"] == kind


@pytest.mark.parametrize("kind", [None, 3, "tick", "cart_updated", "store_redacted"])
def test_an_unknown_type_is_named(kind: object) -> None:
    with pytest.raises(BadEvent, match=r"^type: unknown shopper event type"):
        shopper_event({"type": kind, "checkout": "c1"})


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BadEvent, match=r"^event: expected a JSON object"):
        shopper_event(["cart_abandoned"])


def test_a_cycle_is_an_integer_and_defaults_to_the_first() -> None:
    first = shopper_event({"type": "cart_abandoned", "checkout": "c1"})
    assert isinstance(first, CartAbandoned) and first.cycle == 1
    third = shopper_event({"type": "cart_abandoned", "checkout": "c1", "cycle": 3})
    assert isinstance(third, CartAbandoned) and third.cycle == 3
    for bad in (True, "2", 2.0):
        with pytest.raises(BadEvent, match=r"^cycle: expected int"):
            shopper_event({"type": "cart_abandoned", "checkout": "c1", "cycle": bad})


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"type": "cart_abandoned"}, "event: object missing required field checkout"),
        ({"type": "cart_converted", "checkout": 7}, "checkout: expected str, got int"),
        ({"type": "cart_abandoned", "checkout": "c", "cart": "x"}, "cart: expected object"),
        ({"type": "consent_changed", "granted": "yes"}, "granted: expected bool"),
        ({"type": "cart_reopened", "checkout": "c", "sk": [1.0, 2]}, "sk[1]: invalid enum value"),
        ({"type": "shopper_redacted", "shopper": 5}, "shopper: expected str"),
    ],
)
def test_a_field_of_the_wrong_shape_is_named(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(BadEvent) as refused:
        shopper_event(fields)
    assert str(refused.value).startswith(named), str(refused.value)


def test_codes_a_record_from_elsewhere_cannot_carry_are_a_bad_event() -> None:
    converted = shopper_event(
        {"type": "cart_converted", "checkout": "c1", "discount_codes": "not a list"}
    )
    assert isinstance(converted, CartConverted)
    with pytest.raises(BadEvent):
        used_discounts(converted)
