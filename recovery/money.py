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
