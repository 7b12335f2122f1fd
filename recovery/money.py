"""Money as Decimal plus ISO-4217 currency; never float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


def parse_amount(value: object) -> Decimal:
    """Parse a wire amount (decimal string or int) into a finite Decimal.

    Floats are refused: they cannot carry cents exactly. Surrounding whitespace is allowed.
    """
    kind = type(value)
    if kind is str or kind is int:  # the wire's two forms first: this runs several times/event
        try:
            amount = Decimal(value)  # type: ignore[arg-type]
        except InvalidOperation as exc:
            raise MoneyError(f"not a decimal amount: {value!r}") from exc
    elif isinstance(value, (bool, float)):
        raise MoneyError(f"amount must be a decimal string, not {type(value).__name__}")
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | str):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise MoneyError(f"not a decimal amount: {value!r}") from exc
    else:
        raise MoneyError(f"amount must be a decimal string, not {type(value).__name__}")
    if not amount.is_finite():
        raise MoneyError(f"amount must be finite: {value!r}")
    return amount


# What the core computes with exactly (Decimal's 28 digits, with room for sums and products):
# a wire amount beyond this cannot be a cart's, and would make quantize() raise downstream.
MAX_INTEGER_DIGITS = 15
MAX_PLACES = 6
MAX_TEXT = 64  # characters of a wire amount, before it is parsed at all
_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)
_INT_LIMIT = 10**MAX_INTEGER_DIGITS
# the usual wire form, which is within bounds as written (checked without parsing it)
_PLAIN = re.compile(rf"-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{MAX_PLACES}}})?")


def plainly_bounded(value: object) -> bool:
    """Whether ``value`` is an amount :func:`bounded_amount` takes, in the usual wire form
    (False says nothing): a quick check, as it runs on every amount of every cart event."""
    if isinstance(value, str):
        return _PLAIN.fullmatch(value) is not None
    return type(value) is int and -_INT_LIMIT < value < _INT_LIMIT


def bounded_amount(value: object) -> Decimal:
    """:func:`parse_amount`, refusing what the core cannot take: an amount of
    MAX_INTEGER_DIGITS integer digits or more, or one more precise than MAX_PLACES decimals."""
    if type(value) is str:
        if _PLAIN.fullmatch(value):  # the usual wire form: within bounds as written
            return Decimal(value)
        if len(value) > MAX_TEXT:
            raise MoneyError(f"amount longer than {MAX_TEXT} characters")
    amount = parse_amount(value)
    if abs(amount) >= _LIMIT:
        raise MoneyError(f"amount out of range (at most {MAX_INTEGER_DIGITS} integer digits)")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES and amount != amount.quantize(_QUANTUM):
        raise MoneyError(f"amount with more than {MAX_PLACES} decimal places")
    return amount


def check_currency(code: object) -> str:
    if not isinstance(code, str) or not _CURRENCY.match(code):
        raise MoneyError(f"currency must be an ISO-4217 code like 'USD': {code!r}")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: object, currency: object) -> Money:
        return cls(parse_amount(amount), check_currency(currency))

    def to_wire(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
