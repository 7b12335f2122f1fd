"""recovery.amounts: the amount rule the gateway applies at the edge (and the core may reuse)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery import amounts
from recovery.amounts import AmountError


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("249.90", "USD", Decimal("249.90")),
        (" 12 ", "EUR", Decimal("12")),
        ("1500", "JPY", Decimal("1500")),
        ("1500.00", "JPY", Decimal("1500")),
        ("1.234", "KWD", Decimal("1.234")),
        ("0", "USD", Decimal("0")),
        ("-0.00", "USD", Decimal("0")),
        (310, "USD", Decimal("310")),
        (Decimal("7.5"), "GBP", Decimal("7.5")),
        ("100000000000.00", "USD", Decimal("100000000000")),
        ("10000000000000", "JPY", Decimal("10000000000000")),
    ],
)
def test_amounts_within_the_rule(value, currency, expected):
    assert amounts.amount(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "message"),
    [
        ("1e400", "USD", "decimal string"),
        ("1" * 30, "USD", "at most 100000000000.00 USD"),
        ("9" * 5000, "USD", "decimal string"),
        ("100000000000.01", "USD", "at most"),
        ("10000000000001", "JPY", "at most 10000000000000 JPY"),
        ("1500.5", "JPY", "at most 0 decimal places in JPY"),
        ("1.2345", "KWD", "at most 3 decimal places"),
        ("12.345", "USD", "at most 2 decimal places"),
        ("-1", "USD", "negative"),
        ("²", "USD", "decimal string"),
        ("١٢", "USD", "decimal string"),
        ("1_000", "USD", "decimal string"),
        ("NaN", "USD", "decimal string"),
        (Decimal("NaN"), "USD", "finite"),
        (Decimal("Infinity"), "USD", "finite"),
        (Decimal("1E+999999"), "USD", "at most"),
        (True, "USD", "decimal string"),
        (1.5, "USD", "decimal string"),
        (10**20, "USD", "at most"),
        ("1.00", "XAU", "ISO 4217"),
        ("1.00", "ZZZ", "ISO 4217"),
    ],
)
def test_amounts_outside_the_rule_say_which_rule(value, currency, message):
    with pytest.raises(AmountError, match=message.replace(".", r"\.")) as caught:
        amounts.amount(value, currency)
    if isinstance(value, str) and len(value) > 3:
        assert value not in str(caught.value), "the message never echoes the value"


def test_json_numbers_lose_their_float_noise_not_their_value():
    assert amounts.from_float(0.1 + 0.2, "EUR") == Decimal("0.30")
    assert amounts.from_float(310.5, "USD") == Decimal("310.50")
    assert amounts.from_float(1500.0, "JPY") == Decimal("1500")
    for bad in (1e16, -0.5, 1e300):
        with pytest.raises(AmountError):
            amounts.from_float(bad, "USD")


def test_currency_codes():
    assert amounts.currency_code(" usd ") == "USD"
    assert (amounts.minor_units("JPY"), amounts.minor_units("EUR")) == (0, 2)
    assert (amounts.minor_units("BHD"), amounts.minor_units("CLF")) == (3, 4)
    for bad in ("dollars", "US", 840, None, "XTS", "x" * 1000):
        with pytest.raises(AmountError):
            amounts.currency_code(bad)


def test_convert_rounds_half_even_to_the_minor_units():
    assert amounts.convert(Decimal("2.00"), Decimal("249.90") / Decimal("341.36"), "USD") == (
        Decimal("1.46")
    )
    assert amounts.convert(Decimal("0.125"), Decimal(1), "USD") == Decimal("0.12")
    assert amounts.convert(Decimal("999"), Decimal("151.3"), "JPY") == Decimal("151149")
    with pytest.raises(AmountError):
        amounts.convert(Decimal("99999999999"), Decimal("1000"), "USD")


accepted = st.builds(
    lambda currency, minor: (Decimal(minor).scaleb(-amounts.minor_units(currency)), currency),
    st.sampled_from(sorted(amounts.MINOR_UNITS)),
    st.integers(min_value=0, max_value=amounts.MAX_MINOR_UNITS),
)


rates = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(1000), places=6)


@given(first=accepted, second=accepted, quantity=st.integers(0, 10**9), rate=rates)
def test_accepted_amounts_compute_exactly_in_the_default_context(first, second, quantity, rate):
    """Why the bound: sums, a price times a quantity, an amount times a rate rounded to the
    minor units: none raises InvalidOperation or rounds, so no accepted amount sticks the
    core."""
    (a, currency), (b, _) = first, second
    assert amounts.check(a, currency) == a
    assert a + b - b == a
    assert (a * quantity) / quantity == a if quantity else a * quantity == 0
    units = Decimal(1).scaleb(-amounts.minor_units(currency))
    exact = Decimal(int(a.scaleb(4)) * int(rate.scaleb(6))).scaleb(-10)
    assert a * rate == exact
    (a * rate).quantize(units, ROUND_HALF_EVEN)
