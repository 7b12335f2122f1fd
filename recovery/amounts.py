"""The amount rule: what a money amount on the wire may be, per ISO 4217 currency (pure).

An amount is a plain ASCII decimal (``"249.90"``, ``"1000"``) or a JSON number (rounded to
the minor units: see :func:`from_float`), within ``0`` and
:data:`MAX_MINOR_UNITS` minor units of its currency, with no more precision than the
currency's minor units (``"1000.00"`` yen is 1000 yen; ``"10.5"`` yen is refused). The bound
keeps what the core computes inside Decimal's default 28-digit context (sums, a price times
a quantity up to 10^9, an amount times a rate rounded to the minor units), so no computation
on an accepted amount raises ``InvalidOperation``. Currencies are the ISO 4217
codes of money a shop can price in; fund, metal and test codes have no minor units and are
refused.

Raises :class:`AmountError` naming what is wrong, never echoing the value: a message may be
logged or returned to a caller.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MAX_DIGITS = 13
MAX_MINOR_UNITS = 10**MAX_DIGITS
MAX_TEXT = 40

# ISO 4217 codes by minor units (recently withdrawn codes kept: a late webhook may carry one).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR
    KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR
    MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK
    SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN
    UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL
"""
MINOR_UNITS: dict[str, int] = {
    code: places
    for codes, places in ((_TWO, 2), (_ZERO, 0), (_THREE, 3), (_FOUR, 4))
    for code in codes.split()
}

_PLAIN = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_UNITS = {n: Decimal(1).scaleb(-n) for n in range(5)}


class AmountError(ValueError):
    """An amount or currency outside the rule; the message names the rule broken."""


def minor_units(currency: str) -> int:
    """The number of decimal places of ``currency`` (``USD``: 2, ``JPY``: 0, ``KWD``: 3)."""
    places = MINOR_UNITS.get(currency)
    if places is None:
        raise AmountError("not an ISO 4217 currency code of a shop's money")
    return places


def currency_code(value: object) -> str:
    """``value`` as an ISO 4217 code (surrounding space and case are forgiven)."""
    code = value.strip().upper() if isinstance(value, str) and len(value) <= MAX_TEXT else ""
    if code not in MINOR_UNITS:
        raise AmountError("must be an ISO 4217 currency code like 'USD'")
    return code


def parse_text(text: str) -> Decimal:
    """A plain ASCII decimal: no exponent, no sign but ``-``, no other digits, no ``_``."""
    stripped = text.strip()
    if len(stripped) > MAX_TEXT or not stripped.isascii() or not _PLAIN.fullmatch(stripped):
        raise AmountError('must be a decimal string like "18.50"')
    return Decimal(stripped)


def check(amount: Decimal, currency: str) -> Decimal:
    """``amount`` if it is within the rule for ``currency``, else :class:`AmountError`."""
    places = minor_units(currency)
    if not amount.is_finite():
        raise AmountError("must be a finite amount")
    if amount < 0:
        raise AmountError("must not be negative")
    if amount.is_zero():
        return abs(amount)  # no "-0" on the wire
    # In minor units the amount has ``adjusted() + places + 1`` integer digits: compare that
    # first, so an exponent like 1E+400 is refused without building the number.
    magnitude = amount.adjusted() + places
    if magnitude > MAX_DIGITS or (
        magnitude == MAX_DIGITS and amount.scaleb(places) > MAX_MINOR_UNITS
    ):
        raise AmountError(f"must be at most {_largest(places)} {currency}")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, so not 'n', 'N' or 'F'
    if -exponent > places and amount != amount.quantize(_UNITS[places], ROUND_HALF_EVEN):
        raise AmountError(f"must have at most {places} decimal places in {currency}")
    return amount


def amount(value: object, currency: str) -> Decimal:
    """A wire amount (decimal string, integer or Decimal) in ``currency``, checked."""
    if isinstance(value, bool):
        raise AmountError('must be a decimal string like "18.50"')
    if isinstance(value, str):
        return check(parse_text(value), currency)
    if isinstance(value, int):
        if abs(value) > MAX_MINOR_UNITS:
            raise AmountError(f"must be at most {_largest(minor_units(currency))} {currency}")
        return check(Decimal(value), currency)
    if isinstance(value, Decimal):
        return check(value, currency)
    raise AmountError('must be a decimal string like "18.50"')


def from_float(value: float, currency: str) -> Decimal:
    """A JSON number (a binary float) in ``currency``: its shortest repr, rounded half-even
    to the currency's minor units, since digits beyond them (``0.1 + 0.2`` is
    ``0.30000000000000004``) are the float's noise, not money; then checked."""
    places = minor_units(currency)
    try:
        exact = Decimal(repr(value))
    except InvalidOperation:
        raise AmountError('must be a decimal string like "18.50"') from None
    if not exact.is_finite():
        raise AmountError("must be a finite amount")
    if exact.adjusted() + places <= MAX_DIGITS:
        exact = exact.quantize(_UNITS[places], ROUND_HALF_EVEN)
    return check(exact, currency)


def convert(value: Decimal, rate: Decimal, currency: str) -> Decimal:
    """``value * rate`` rounded half-even to ``currency``'s minor units, checked."""
    places = minor_units(currency)
    try:
        converted = (value * rate).quantize(_UNITS[places], ROUND_HALF_EVEN)
    except InvalidOperation:
        raise AmountError(f"must be at most {_largest(places)} {currency}") from None
    return check(converted, currency)


def _largest(places: int) -> str:
    return str(Decimal(MAX_MINOR_UNITS).scaleb(-places))
