"""recovery.shopper_records: what stage B reads of a record, checked."""

from __future__ import annotations

import pytest

from recovery.checkouts import BadEvent
from recovery.shopper_records import RECORD_TYPES, cycle_of, known_type, used_discounts
from recovery.shoppers import CART_LEFT, TRANSITIONS


def test_every_record_type_read_has_a_transition_and_no_other() -> None:
    assert {*TRANSITIONS, *CART_LEFT} == RECORD_TYPES
    for kind in RECORD_TYPES:
        assert known_type({"type": kind}) == kind


@pytest.mark.parametrize("kind", [None, 3, "tick", "cart_updated"])
def test_an_unknown_type_is_named(kind: object) -> None:
    with pytest.raises(BadEvent, match="unknown shopper event type"):
        known_type({"type": kind})


def test_a_cycle_is_an_integer_and_defaults_to_the_first() -> None:
    assert cycle_of({}) == 1
    assert cycle_of({"cycle": 3}) == 3
    for bad in (True, "2", 2.0):
        with pytest.raises(BadEvent, match="cycle"):
            cycle_of({"cycle": bad})


def test_codes_a_record_from_elsewhere_cannot_carry_are_a_bad_event() -> None:
    with pytest.raises(BadEvent):
        used_discounts({"type": "cart_converted", "discount_codes": "not a list"})
