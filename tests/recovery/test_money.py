from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.money import Money, MoneyError, parse_amount
from schemas.codec import dumps, loads
from schemas.records import CartUpdated

cents = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2)


@given(cents)
def test_amount_round_trips_through_the_wire_exactly(amount):
    wire = loads(dumps({"total": amount}))
    assert isinstance(wire["total"], str)
    assert parse_amount(wire["total"]) == amount
    assert str(parse_amount(wire["total"])) == str(amount)


def test_float_is_refused():
    with pytest.raises(MoneyError):
        parse_amount(0.1)


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", None, [1]])
def test_non_amounts_are_refused(bad):
    with pytest.raises(MoneyError):
        parse_amount(bad)


def test_money_needs_iso_currency():
    assert Money.of("10.10", "EUR").to_wire() == {"amount": "10.10", "currency": "EUR"}
    with pytest.raises(MoneyError):
        Money.of("1", "euro")


def test_record_keeps_decimal_in_memory_and_string_on_wire():
    record = CartUpdated.from_data(
        {
            "store": "s",
            "checkout": "c",
            "event_id": "e",
            "occurred_at": "2026-11-02T15:00:00Z",
            "currency": "USD",
            "total": "0.10",
            "line_items": [{"title": "x", "quantity": 3, "price": "0.10"}],
        }
    )
    assert record.total == Decimal("0.10")
    assert isinstance(record.line_items[0].price, Decimal)
    wire = loads(record.dumps())
    assert wire["total"] == "0.10"
    assert wire["line_items"][0]["price"] == "0.10"
    assert CartUpdated.from_data(wire).total == Decimal("0.10")
